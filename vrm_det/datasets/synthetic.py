"""A batch of generated images with boxes, in the form mmdet's models take."""
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData


def synthetic_detection_batch(num_images: int = 2, image_size: int = 128, num_boxes: int = 3,
                              num_classes: int = 3, seed: int = 0) -> dict:
    """Images with coloured rectangles on noise, and their boxes and labels.

    Returns:
        dict: ``inputs`` (list of (3, S, S) uint8 tensors) and ``data_samples``
        (list of :class:`DetDataSample` with ``gt_instances``), the input of
        a detector's ``data_preprocessor``.
    """
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num_images):
        image = torch.randint(0, 80, (3, image_size, image_size), generator=g, dtype=torch.uint8)
        boxes, labels = [], []
        for _ in range(num_boxes):
            w, h = torch.randint(image_size // 8, image_size // 2, (2,), generator=g).tolist()
            x0 = int(torch.randint(0, image_size - w, (1,), generator=g))
            y0 = int(torch.randint(0, image_size - h, (1,), generator=g))
            label = int(torch.randint(num_classes, (1,), generator=g))
            colour = torch.randint(100, 256, (3,), generator=g, dtype=torch.uint8)
            image[:, y0:y0 + h, x0:x0 + w] = colour[:, None, None]
            boxes.append([x0, y0, x0 + w, y0 + h])
            labels.append(label)
        shape = (image_size, image_size)
        sample = DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                                             scale_factor=(1.0, 1.0), batch_input_shape=shape))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                                           labels=torch.tensor(labels))
        inputs.append(image)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)
