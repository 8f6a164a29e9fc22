"""`import mfsearch` stays light: the runtimes, exporters and scorers a command may need
load where they are used, so a plain install imports without them."""
import subprocess
import sys

HEAVY = ("onnx", "onnxruntime", "onnxscript", "pycocotools", "ray", "optuna_dashboard", "matplotlib")


def test_import_mfsearch_loads_no_heavy_optional_module():
    code = ("import sys, mfsearch, mfsearch.common\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import mfsearch loaded {out.stdout.strip()}"
