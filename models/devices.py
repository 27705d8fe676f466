"""Which device TensorFlow trains on: `auto` (a GPU when it sees one), `cpu` or `gpu`.

Call `select` before any model is built: TensorFlow fixes its visible devices
the first time it uses one.
"""

from __future__ import annotations

import os


class DeviceError(RuntimeError):
    """The device asked for is not available; the message says what to do."""


def select(device="auto"):
    """Makes TensorFlow use `device` and returns what it will use, in words.

    Args:
        device: `"auto"`, `"cpu"` or `"gpu"`. Defaults to `"auto"`.

    Returns:
        e.g. `"CPU (2 cores)"` or `"GPU:0 (NVIDIA H100 80GB HBM3)"`.

    Raises:
        ValueError: an unknown device name.
        DeviceError: `gpu` on a machine where TensorFlow sees none.
    """
    if device not in ("auto", "cpu", "gpu"):
        raise ValueError(f"`device` must be one of auto, cpu, gpu. Received: device={device!r}")
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise DeviceError(
            "`--device gpu` was asked for, but TensorFlow sees no GPU on this machine "
            "(tf.config.list_physical_devices('GPU') is empty). Install a CUDA-enabled "
            "TensorFlow (`pip install tensorflow[and-cuda]`) on a machine with an NVIDIA GPU, "
            "or use `--device cpu`."
        )
    if device == "cpu" and gpus:
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:
            raise DeviceError(
                "`--device cpu` came too late: TensorFlow had already started on the GPU in "
                "this process. Start a new process with `--device cpu`, or set "
                "CUDA_VISIBLE_DEVICES= before starting."
            ) from None
        gpus = []
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU:0 ({details.get('device_name', 'GPU')})"
    return f"CPU ({os.cpu_count()} cores)"
