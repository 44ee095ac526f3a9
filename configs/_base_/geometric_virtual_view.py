# VRM's virtual view for detection with geometric operations, made by the data
# pipeline: RandAugment with two operations (the paper's n = 2) drawn from
# photometric and geometric ones. mmdet's geometric transforms move the boxes
# and record the homography they apply; the distiller projects its RoIs into the
# virtual image with it (model.virtual_view=dict(type='DetectionPipelineView')).
#
# The photometric operations and their strengths are those of the in-model view
# (PhotometricRandAugment, magnitude 0.5): brightness, contrast, colour and
# sharpness by a factor 1.4 or 0.6 at random (in-model 1.45 or 0.55: mmdet rounds a
# magnitude to one decimal), posterize to 6 bits, solarize above 128,
# autocontrast, equalize. mmdet's own RandAugment space (RANDAUG_SPACE in
# mmdet/datasets/transforms/augment_wrappers.py) is not used as it is: at a fixed
# level its colour operations have no random sign, and level 5 is their identity.
# The geometric operations are mmdet's at half their largest magnitude, random
# sign: rotate by 15 degrees, shear by 15 degrees, translate by 10% of the side.
# Every magnitude is given as min_mag = max_mag (level 10), so it is the one stated.
_fixed = dict(level=10)
geometric_virtual_view_transform = dict(
    type='RandAugment',
    aug_num=2,
    aug_space=[
        [dict(type='AutoContrast')],
        [dict(type='Equalize')],
        [dict(type='Posterize', min_mag=6.0, max_mag=6.0, **_fixed)],
        [dict(type='Solarize', min_mag=128.0, max_mag=128.0, **_fixed)],
        *[[dict(type='RandomChoice', transforms=[
            [dict(type=op, min_mag=1.4, max_mag=1.4, **_fixed)],
            [dict(type=op, min_mag=0.6, max_mag=0.6, **_fixed)]])]
          for op in ('Brightness', 'Contrast', 'Color', 'Sharpness')],
        [dict(type='Rotate', min_mag=15.0, max_mag=15.0, **_fixed)],
        [dict(type='ShearX', min_mag=15.0, max_mag=15.0, **_fixed)],
        [dict(type='ShearY', min_mag=15.0, max_mag=15.0, **_fixed)],
        [dict(type='TranslateX', min_mag=0.1, max_mag=0.1, **_fixed)],
        [dict(type='TranslateY', min_mag=0.1, max_mag=0.1, **_fixed)],
    ])
# Each branch records the homography from the loaded image to itself.
two_view_meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                      'flip_direction', 'homography_matrix')
# The last step of a two-view train pipeline: after the shared resize and flip,
# the real view as it is and the virtual view through RandAugment.
two_view_branches = dict(
    type='MultiBranch',
    branch_field=['real', 'virtual'],
    real=[dict(type='PackDetInputs', meta_keys=two_view_meta_keys)],
    virtual=[geometric_virtual_view_transform,
             dict(type='PackDetInputs', meta_keys=two_view_meta_keys)])
