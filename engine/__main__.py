import os
import sys

# Before transformers is imported: its import-time notices (torchvision fallbacks) are not for CLI users.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from engine.cli import main

sys.exit(main())
