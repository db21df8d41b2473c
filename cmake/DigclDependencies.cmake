# Finds digcl's dependencies from distribution packages and collects them in
# DIGCL_DEPENDENCY_TARGETS. A missing one stops configuration with the package
# names for Debian/Ubuntu, Fedora and Arch (scripts/install-deps.sh installs them).
find_package(PkgConfig REQUIRED)

function(digcl_missing what debian fedora arch)
  message(FATAL_ERROR
    "digcl needs ${what}, which was not found.\n"
    "  Debian/Ubuntu: sudo apt-get install ${debian}\n"
    "  Fedora:        sudo dnf install ${fedora}\n"
    "  Arch:          sudo pacman -S ${arch}\n"
    "  or run scripts/install-deps.sh")
endfunction()

find_package(OpenCL QUIET)
if(NOT OpenCL_FOUND)
  digcl_missing("the OpenCL ICD loader and headers" "ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd"
                "ocl-icd-devel opencl-headers pocl" "ocl-icd opencl-headers pocl")
endif()

find_package(CLBlast QUIET CONFIG)
if(NOT CLBlast_FOUND)
  digcl_missing("CLBlast >= 1.5.3" "libclblast-dev" "clblast-devel" "clblast")
endif()
if(CLBlast_VERSION AND CLBlast_VERSION VERSION_LESS 1.5.3)
  message(FATAL_ERROR "digcl needs CLBlast >= 1.5.3, found ${CLBlast_VERSION}")
endif()

find_package(PNG QUIET)
if(NOT PNG_FOUND)
  digcl_missing("libpng" "libpng-dev" "libpng-devel" "libpng")
endif()

find_package(ZLIB QUIET)
if(NOT ZLIB_FOUND)
  digcl_missing("zlib" "zlib1g-dev" "zlib-devel" "zlib")
endif()

pkg_check_modules(CJSON QUIET IMPORTED_TARGET libcjson)
if(NOT CJSON_FOUND)
  digcl_missing("cJSON" "libcjson-dev" "cjson-devel" "cjson")
endif()

pkg_check_modules(XXHASH QUIET IMPORTED_TARGET libxxhash)
if(NOT XXHASH_FOUND)
  digcl_missing("xxHash" "libxxhash-dev" "xxhash-devel" "xxhash")
endif()

if(DIGCL_BUILD_TESTS)
  pkg_check_modules(CMOCKA QUIET IMPORTED_TARGET cmocka)
  if(NOT CMOCKA_FOUND)
    digcl_missing("cmocka (tests)" "libcmocka-dev" "libcmocka-devel" "cmocka")
  endif()
endif()

set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)

pkg_check_modules(TURBOJPEG QUIET IMPORTED_TARGET libturbojpeg)
if(NOT TURBOJPEG_FOUND)
  digcl_missing("libjpeg-turbo (TurboJPEG)" "libturbojpeg0-dev" "turbojpeg-devel" "libjpeg-turbo")
endif()

# stb_image_resize (header only, Debian libstb-dev) for the ADM centre crop.
find_path(STB_INCLUDE_DIR NAMES stb_image_resize.h stb_image_resize2.h PATH_SUFFIXES stb)
if(NOT STB_INCLUDE_DIR)
  digcl_missing("stb (stb_image_resize.h)" "libstb-dev" "stb-devel" "stb")
endif()

set(DIGCL_DEPENDENCY_TARGETS OpenCL::OpenCL clblast PNG::PNG ZLIB::ZLIB PkgConfig::CJSON PkgConfig::XXHASH
    PkgConfig::TURBOJPEG Threads::Threads)
set(DIGCL_DEPENDENCY_DEFINITIONS "")

# Optional: cairo draws plots (loss.png, bench sweep) and caption text; libzip
# writes .npz archives. A build without them (the GPU machine carries only the
# core runtime libraries) says so where the feature is asked for.
option(DIGCL_WITH_CAIRO "Plots and captions through cairo" ON)
option(DIGCL_WITH_ZIP "The .npz sample archive through libzip" ON)
if(DIGCL_WITH_CAIRO)
  pkg_check_modules(CAIRO QUIET IMPORTED_TARGET cairo)
  if(NOT CAIRO_FOUND)
    digcl_missing("cairo (or configure with -DDIGCL_WITH_CAIRO=OFF)" "libcairo2-dev fonts-dejavu-core"
                  "cairo-devel dejavu-sans-fonts" "cairo ttf-dejavu")
  endif()
  list(APPEND DIGCL_DEPENDENCY_TARGETS PkgConfig::CAIRO)
  list(APPEND DIGCL_DEPENDENCY_DEFINITIONS DIGCL_HAVE_CAIRO=1)
endif()
option(DIGCL_WITH_OPENBLAS "GEMMs on CPU OpenCL devices through OpenBLAS" ON)
if(DIGCL_WITH_OPENBLAS)
  pkg_check_modules(OPENBLAS QUIET IMPORTED_TARGET openblas)
  if(NOT OPENBLAS_FOUND)
    digcl_missing("OpenBLAS (or configure with -DDIGCL_WITH_OPENBLAS=OFF)" "libopenblas-dev"
                  "openblas-devel" "openblas")
  endif()
  list(APPEND DIGCL_DEPENDENCY_TARGETS PkgConfig::OPENBLAS)
  list(APPEND DIGCL_DEPENDENCY_DEFINITIONS DIGCL_HAVE_OPENBLAS=1)
endif()
if(DIGCL_WITH_ZIP)
  pkg_check_modules(LIBZIP QUIET IMPORTED_TARGET libzip)
  if(NOT LIBZIP_FOUND)
    digcl_missing("libzip (or configure with -DDIGCL_WITH_ZIP=OFF)" "libzip-dev" "libzip-devel" "libzip")
  endif()
  list(APPEND DIGCL_DEPENDENCY_TARGETS PkgConfig::LIBZIP)
  list(APPEND DIGCL_DEPENDENCY_DEFINITIONS DIGCL_HAVE_ZIP=1)
endif()

# Optional: data-parallel training across processes (src/dist/) through MPI (Open MPI from
# Debian: libopenmpi-dev, openmpi-bin). On when found; a build without it runs as one rank.
option(DIGCL_WITH_MPI "Data-parallel training through MPI (on when found)" ON)
if(DIGCL_WITH_MPI)
  find_package(MPI QUIET COMPONENTS C)
  if(MPI_C_FOUND)
    list(APPEND DIGCL_DEPENDENCY_TARGETS MPI::MPI_C)
    list(APPEND DIGCL_DEPENDENCY_DEFINITIONS DIGCL_HAVE_MPI=1)
    find_program(DIGCL_MPIEXEC NAMES mpirun mpiexec HINTS "${MPI_HOME}/bin")
  else()
    message(STATUS "digcl: MPI not found; data-parallel training off (libopenmpi-dev openmpi-bin)")
  endif()
endif()
