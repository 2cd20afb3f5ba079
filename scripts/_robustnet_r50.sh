# Sourced by the RobustNet method scripts ({baseline,ibn,iw,irw,isw,sw}_train_r50os16_*.sh):
# the flags all of them share, RobustNet's ResNet-50 OS16 recipe (ROBUSTNET_METHODS.md §2.4;
# the Cityscapes scripts change only GPUs, datasets and the method constants, §2.6) and the
# output folders. Each script adds its datasets, its method's flags and its --exp.
source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
ROBUSTNET_R50_FLAGS=(
    --arch network.deepv3.DeepR50V3PlusD
    --city_mode 'train'
    --lr_schedule poly
    --lr 0.01
    --poly_exp 0.9
    --max_cu_epoch 10000
    --class_uniform_pct 0.5
    --class_uniform_tile 1024
    --crop_size 768
    --scale_min 0.5
    --scale_max 2.0
    --rrotate 0
    --max_iter 40000
    --bs_mult 4
    --gblur
    --color_aug 0.5
    --date 0101
    --ckpt ./logs/
    --tb_path ./logs/
)
