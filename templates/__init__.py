"""Jinja2 mail templates: ``templates/<language>/<kind>.{subject.txt,txt,html}``.

Each language directory has its own ``_layout.txt`` / ``_layout.html`` (greeting, signature,
footer) that the kind templates extend.
"""

from pathlib import Path

TEMPLATES_DIR: Path = Path(__file__).resolve().parent
