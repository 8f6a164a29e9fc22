from .attention import attention_maps
from .checkpoint import load_checkpoint, save_checkpoint
from .config import (
    MOBILENET_V3_PUBLISHED,
    BlockSpec,
    MobileFormerConfig,
    MobileNetV3Config,
    ModelConfig,
    config_from_dict,
    make_divisible,
    preset_config,
    preset_table,
)
from .family import FAMILIES, Family, compared, families, get_family, register_family
from .mobile_former import MobileFormer
from .registry import create_model, get_config, list_models, published, published_top1
from .torchvision_mobile import TorchvisionMobileConfig

__all__ = ["FAMILIES", "Family", "compared", "families", "get_family", "register_family",
           "attention_maps", "load_checkpoint", "save_checkpoint", "BlockSpec", "MobileFormerConfig",
           "MobileNetV3Config", "TorchvisionMobileConfig", "ModelConfig", "config_from_dict", "make_divisible",
           "MobileFormer", "MOBILENET_V3_PUBLISHED", "create_model", "get_config", "list_models", "preset_config",
           "preset_table", "published", "published_top1"]
