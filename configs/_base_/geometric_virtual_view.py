# VRM's virtual view for detection with geometric operations, made by the data
# pipeline: RandAugment with two operations (the paper's n = 2) drawn from
# photometric and geometric ones. mmdet's geometric transforms move the boxes
# and record the homography they apply; the distiller projects its RoIs into the
# virtual image with it (model.virtual_view=dict(type='DetectionPipelineView')).
#
# The operations are mmdet's RandAugment space (mmdet/datasets/transforms/
# augment_wrappers.py, RANDAUG_SPACE) without Invert and SolarizeAdd, so that
# they are the in-model photometric view's operations (PhotometricRandAugment)
# plus the five geometric ones; every operation at level 5 of 10, the in-model
# view's magnitude 0.5: rotate by 15 degrees, shear by 15 degrees, translate by 5% of
# the side, each with a random sign. The comparison of the two views then
# differs in the geometric operations only.
geometric_virtual_view_transform = dict(
    type='RandAugment',
    aug_num=2,
    aug_space=[[dict(type='AutoContrast', level=5)], [dict(type='Equalize', level=5)],
               [dict(type='Posterize', level=5)], [dict(type='Solarize', level=5)],
               [dict(type='Color', level=5)], [dict(type='Contrast', level=5)],
               [dict(type='Brightness', level=5)], [dict(type='Sharpness', level=5)],
               [dict(type='Rotate', level=5)], [dict(type='ShearX', level=5)],
               [dict(type='ShearY', level=5)], [dict(type='TranslateX', level=5)],
               [dict(type='TranslateY', level=5)]])
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
