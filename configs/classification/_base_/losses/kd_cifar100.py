# KD on CIFAR-100 at its benchmark setting: temperature 4, cross-entropy weight 0.1, KD weight
# 0.9 (megvii-research/mdistiller mdistiller/engine/cfg.py KD.TEMPERATURE, KD.LOSS.CE_WEIGHT,
# KD.LOSS.KD_WEIGHT, used unchanged by configs/cifar100/kd.yaml; HobbitLong/RepDistiller
# scripts/run_cifar_distill.sh, `--distill kd -r 0.1 -a 0.9`, train_student.py --kd_T 4).
kd_loss = dict(_delete_=True, type='KDLoss', temperature=4.0, loss_weight=0.9)
kd_ce_weight = 0.1
