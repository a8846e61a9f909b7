import gzip
from importlib import resources

SCRIPT = resources.files("gati.web").joinpath("static/gati.js").read_bytes()


def test_script_is_under_2kb_gzipped() -> None:
    size = len(gzip.compress(SCRIPT, compresslevel=9))
    assert size < 2048, f"gati.js is {size} bytes gzipped"


def test_script_speaks_the_collect_contract() -> None:
    text = SCRIPT.decode()
    for field in (
        "eventType",
        "siteId",
        "timestamp",
        "url",
        "path",
        "referrer",
        "title",
        "utmParams",
        "properties",
    ):
        assert field in text
    for api in (
        "sendBeacon",
        "keepalive",
        "text/plain",
        "pushState",
        "replaceState",
        "popstate",
        "hashchange",
        "data-",
        "doNotTrack",
    ):
        assert api in text
