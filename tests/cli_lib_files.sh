#!/bin/sh
# Writes small safetensors files for the CLI checks of tests/cli_lib.cmake into
# the directory $1 (made if needed). A file is the 8-byte little-endian header
# length, the JSON header, then the raw little-endian tensor bytes.
set -e
LC_ALL=C
export LC_ALL
dir=$1
mkdir -p "$dir"

# st FILE HEADER_JSON DATA_PRINTF_FORMAT
st() {
    length=${#2}
    {
        printf "\\$(printf %03o $((length % 256)))\\$(printf %03o $((length / 256 % 256)))"
        printf '\000\000\000\000\000\000'
        printf '%s' "$2"
        printf "$3"
    } > "$1"
}

one='\000\000\200\077'  # 1.0f
nan='\000\000\300\177'  # NaN
i64_zero='\000\000\000\000\000\000\000\000'
x_t_y='"t":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},"y":{"dtype":"I64","shape":[1],"data_offsets":[20,28]}'

# Inputs of the tiny model of cli_lib.cmake (x [1, 1, 2, 2]).
st "$dir/x_nan.st" "{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,2,2],\"data_offsets\":[0,16]},$x_t_y}" \
   "$one$nan$one$one$one$i64_zero"
st "$dir/x_int.st" "{\"x\":{\"dtype\":\"I32\",\"shape\":[1,1,2,2],\"data_offsets\":[0,16]},$x_t_y}" \
   "$one$one$one$one$one$i64_zero"

config='{\"arch\":\"dig\",\"depth\":1,\"hidden_size\":8,\"num_heads\":1,\"patch_size\":2,\"input_size\":2,\"in_channels\":1,\"num_classes\":1,\"learn_sigma\":false,\"skip\":false}'
# A checkpoint whose one entry has the wrong shape.
st "$dir/bad_entry.st" "{\"__metadata__\":{\"dig.config\":\"$config\"},\"pos_embed\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}" "$one"
# Header errors that are not "no dig.config".
st "$dir/dup_meta.st" "{\"__metadata__\":{\"a\":\"b\"},\"__metadata__\":{\"dig.config\":\"$config\"}}" ""
st "$dir/trailing.st" "{\"__metadata__\":{\"dig.config\":\"$config\"}} x" ""
st "$dir/bad_utf8.st" "{\"__metadata__\":{\"dig.config\":\"$(printf '\377')\"}}" ""
echo files written
