from .fashion_mnist import FASHION_MNIST_FILES, prepare_fashion_mnist
from .fashion_mnist_detection import FASHION_MNIST_CLASSES, make_fashion_mnist_detection
from .synthetic import synthetic_detection_batch
from .toy_coco import TOY_CLASSES, make_toy_coco

__all__ = ['FASHION_MNIST_CLASSES', 'FASHION_MNIST_FILES', 'TOY_CLASSES',
           'make_fashion_mnist_detection', 'make_toy_coco', 'prepare_fashion_mnist',
           'synthetic_detection_batch']
