/* digcl/checkpoint.h: whole-model safetensors checkpoints.
 *
 * Tensor names are upstream's PyTorch state_dict names (the parameter table of
 * model_config.h); the model config travels in __metadata__ under
 * DIGCL_CONFIG_METADATA_KEY ("dig.config") as digcl_model_config_to_json text.
 *
 * Loading is strict: every table tensor present with the exact shape, no
 * unexpected tensors, dtype F32, F16, BF16 or F64 (converted to float32), finite. The
 * file is checked completely before anything is uploaded, so a failed load
 * leaves the model unchanged. Saving writes F32 plus dig.config, atomically
 * (temp file + fsync + rename, see safetensors.h).
 *
 * Every function returns 0 on success and -1 on failure with one line in
 * error[size] naming the file, the tensor and what was expected. Bad files
 * never abort; only device failures (digcl_fatal) do.
 */
#ifndef DIGCL_CHECKPOINT_H
#define DIGCL_CHECKPOINT_H

#include <stddef.h>

#include "digcl/model.h"
#include "digcl/model_config.h"

/* Reads only the file's header and parses its dig.config into *cfg (finished).
 * Returns DIGCL_CHECKPOINT_NO_CONFIG (-2) when the header is readable but has
 * no dig.config; the message then says to describe the model with flags
 * (--model or --arch/--depth/...). Other failures return -1. */
#define DIGCL_CHECKPOINT_NO_CONFIG (-2)
int digcl_checkpoint_read_config(const char *path, digcl_model_config *cfg, char *error,
                                 size_t size);

/* Checks, from the header alone, that the file holds exactly the tensors of
 * cfg's table with their shapes and float dtypes (what digcl_checkpoint_load
 * checks before reading any value; `digcl info --ckpt`). */
int digcl_checkpoint_check(const char *path, const digcl_model_config *cfg, char *error,
                           size_t size);

/* Loads every parameter of the model's table from path and uploads it. The
 * file's dig.config (if any) is not compared: the caller chose the config and
 * the shapes are checked. */
int digcl_checkpoint_load(digcl_model *model, const char *path, char *error, size_t size);

/* Writes every parameter (F32, table order irrelevant) and dig.config. */
int digcl_checkpoint_save(const digcl_model *model, const char *path, char *error, size_t size);

#endif
