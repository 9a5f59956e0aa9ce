"""A library that starts a thread when imported: unsafe for a zygote to preload and fork."""

import threading

_stop = threading.Event()
threading.Thread(target=_stop.wait, daemon=True).start()
