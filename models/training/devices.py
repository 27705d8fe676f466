"""Which device TensorFlow trains on: `auto` (a GPU when it sees one), `cpu` or `gpu`.

Call `select` before any model is built: TensorFlow fixes its visible devices
the first time it uses one.
"""

from __future__ import annotations

import contextlib
import os
import sys


DEVICES = ("auto", "cpu", "gpu")
"""`--device` values: `auto` uses a GPU when TensorFlow sees one."""


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
    if device not in DEVICES:
        raise ValueError(f"`device` must be one of {', '.join(DEVICES)}. Received: device={device!r}")
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


@contextlib.contextmanager
def _native_stderr_silenced():
    """Sends what native code writes to file descriptor 2 to /dev/null, for a moment."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow():
    """Imports TensorFlow and finds its devices without its native start-up log lines.

    TensorFlow 2.21 writes oneDNN, CUDA-stub and cuInit lines to stderr before its
    logging is set up, whatever `TF_CPP_MIN_LOG_LEVEL` says. They are noise in a
    command's output (and look like errors on a machine without a GPU). Python
    exceptions raised by the import still reach the caller.

    Returns:
        The `tensorflow` module.
    """
    with _native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    return tf
