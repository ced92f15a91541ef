"""itglue-ingest's public API for plugins.

Plugins (built-in and third-party) import only from here::

    from pipeline import hookimpl, Source, RecordDraft, FileInput

(``tests/test_plugin_imports.py`` holds the built-in plugins to that.)
"""

from .context import EngineContext, Limits
from .errors import (
    AccessRefused,
    PermanentError,
    PipelineError,
    Rejected,
    ScanIncomplete,
    TransientError,
)
from .extraction import (
    Block,
    Extracted,
    ExtractionError,
    ExtractLimits,
    Extractor,
    ExtractorRegistry,
    Heading,
    Html,
    Picture,
    Registered,
    RegisterExtractor,
)
from .hookspecs import hookimpl, hookspec
from .html import sanitize_html, text_to_html
from .instance_names import InstanceField
from .logs import register_secret
from .paths import FileField, FolderField, PathField, check_folder
from .records import (
    Blob,
    DocumentRecord,
    FileInput,
    RecordDraft,
    Route,
    Section,
    SectionImage,
    Target,
)
from .sinks import DeliveryResult, Sink, SinkOptions, StepJournal
from .sources import EmitResult, RecordState, Source, SourceContext, SourceOptions
from .transforms import Transform, TransformOptions

__all__ = [
    "AccessRefused",
    "Blob",
    "Block",
    "DeliveryResult",
    "DocumentRecord",
    "EmitResult",
    "EngineContext",
    "ExtractLimits",
    "Extracted",
    "ExtractionError",
    "Extractor",
    "ExtractorRegistry",
    "FileField",
    "FileInput",
    "FolderField",
    "Heading",
    "Html",
    "InstanceField",
    "Limits",
    "PathField",
    "PermanentError",
    "Picture",
    "PipelineError",
    "RecordDraft",
    "RecordState",
    "RegisterExtractor",
    "Registered",
    "Rejected",
    "Route",
    "ScanIncomplete",
    "Section",
    "SectionImage",
    "Sink",
    "SinkOptions",
    "Source",
    "SourceContext",
    "SourceOptions",
    "StepJournal",
    "Target",
    "Transform",
    "TransformOptions",
    "TransientError",
    "check_folder",
    "hookimpl",
    "hookspec",
    "register_secret",
    "sanitize_html",
    "text_to_html",
]
