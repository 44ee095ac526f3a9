# The KD benchmark's CIFAR-100 schedule, the same for teachers, students and every method:
# SGD with momentum 0.9, weight decay 5e-4, learning rate 0.05, 240 epochs, decayed x0.1 after
# epochs 150, 180 and 210 (HobbitLong/RepDistiller train_teacher.py and train_student.py
# defaults; megvii-research/mdistiller configs/cifar100/*.yaml SOLVER). MobileNetV2 and
# ShuffleNet students start at 0.01 instead (RepDistiller train_student.py; mdistiller
# configs/cifar100/dkd/res50_mv2.yaml and vgg13_mv2.yaml): their configs lower lr.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))

# Epochs count from 0 here and from 1 in the benchmark, whose rate drops once the epoch
# number exceeds a milestone: both train epochs 151-180 (here 150-179) at 0.1 x lr.
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[150, 180, 210],
                       gamma=0.1)

train_cfg = dict(by_epoch=True, max_epochs=240, val_interval=1)
val_cfg = dict()
test_cfg = dict()

# The learning rates above are for batch 64 on one GPU; --auto-scale-lr scales them.
auto_scale_lr = dict(base_batch_size=64)
