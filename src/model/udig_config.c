/* U-DiG geometry (include/digcl/model_config.h, docs/MODEL.md "U-DiG"): which stage a
 * block belongs to and the token grid it runs on. Pure functions of the config. */
#include "digcl/model_config.h"

int digcl_arch_has_dig_blocks(digcl_arch arch) {
    return arch == DIGCL_ARCH_DIG || arch == DIGCL_ARCH_UDIG;
}

int digcl_udig_stage_depth(const digcl_model_config *cfg) {
    return cfg->arch == DIGCL_ARCH_UDIG ? cfg->depth / DIGCL_UDIG_STAGES : 0;
}

int digcl_model_block_stage(const digcl_model_config *cfg, int block) {
    int stage_depth = digcl_udig_stage_depth(cfg);
    return stage_depth ? block / stage_depth : 0;
}

int digcl_udig_stage_level(int stage) {
    static const int levels[DIGCL_UDIG_STAGES] = {0, 1, 2, 1, 0};
    return stage >= 0 && stage < DIGCL_UDIG_STAGES ? levels[stage] : 0;
}

int digcl_model_block_grid(const digcl_model_config *cfg, int block) {
    if (cfg->arch != DIGCL_ARCH_UDIG) return cfg->grid;
    return cfg->grid >> digcl_udig_stage_level(digcl_model_block_stage(cfg, block));
}
