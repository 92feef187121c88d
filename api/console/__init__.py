"""The finance console (SPEC 4.6): server-rendered pages at /console on the API's app.

Templates and the stylesheet ship inside this package (``templates/``, ``static/``);
nothing is fetched at run time. ``install(app)`` adds it to an app.
"""

from api.console.views import install

__all__ = ["install"]
