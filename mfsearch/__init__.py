"""mfsearch: FLOP-budgeted architecture search and scaling studies for Mobile-Former."""
import warnings

# fvcore's import-time torch.jit.script deprecation note is not the user's to act on, and on
# stderr it would break the commands' one-line error contract
with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from .detection import build_detector, create_backbone
    from .export import export_onnx
    from .flops import FlopReport, count_flops, estimate_flops, estimate_params
    from .latency import measure_latency
    from .models import (
                         BlockSpec,
                         MobileFormer,
                         MobileFormerConfig,
                         MobileNetV3Config,
                         attention_maps,
                         config_from_dict,
                         create_model,
                         get_config,
                         list_models,
                         load_checkpoint,
                         preset_config,
                         published,
    )
    from .profile import profile_latency

__version__ = "0.1.0"
__all__ = ["FlopReport", "count_flops", "estimate_flops", "estimate_params", "BlockSpec", "MobileFormer",
           "MobileFormerConfig", "MobileNetV3Config", "config_from_dict", "create_model", "get_config",
           "list_models", "preset_config", "published", "attention_maps", "load_checkpoint", "export_onnx",
           "measure_latency", "profile_latency", "create_backbone", "build_detector",
           "__version__"]
