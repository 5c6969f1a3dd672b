"""python -m bot.devtools.card_render [OUT_DIR], as ``python -m bot cards``: every card to PNG."""

import sys

from bot.devtools.card_render import main

sys.exit(main())
