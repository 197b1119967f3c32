import sys

from captum_multimodal.studies.cli import main

sys.exit(main())
