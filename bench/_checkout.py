"""Which rnnkit a script in bench/ measures.

The checkout's ``python/`` when its extension is built there (``bash devbuild.sh`` copies
``_core*.so`` into ``python/rnnkit/``), else the installed package (``pip install .``).
Putting ``python/`` first unconditionally broke a checkout whose rnnkit is installed: the
source tree has no ``_core`` and shadowed the working package.
"""

import glob
import os
import sys

SOURCE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))


def prefer_checkout():
    """Puts the checkout's python/ first on sys.path when its extension is built."""
    if glob.glob(os.path.join(SOURCE, "rnnkit", "_core*.so")) and SOURCE not in sys.path:
        sys.path.insert(0, SOURCE)
    try:
        import rnnkit  # noqa: F401
    except ImportError as e:
        sys.exit(
            f"{os.path.basename(sys.argv[0])}: cannot import rnnkit ({e}); install it "
            f"(pip install .) or build it in place (bash devbuild.sh)"
        )
