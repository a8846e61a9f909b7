"""Imports every domain's models so that ``Base.metadata`` is complete (migrations, tests)."""

from gati.auth import models as auth_models
from gati.errors import models as error_models
from gati.events import models as event_models
from gati.exports import models as export_models
from gati.jobs import models as job_models
from gati.metrics import models as metric_models
from gati.projects import models as project_models
from gati.tracing import models as tracing_models
from gati.tracing import pricing_models
from gati.web import models as web_models

__all__ = [
    "auth_models",
    "error_models",
    "event_models",
    "export_models",
    "job_models",
    "metric_models",
    "pricing_models",
    "project_models",
    "tracing_models",
    "web_models",
]
