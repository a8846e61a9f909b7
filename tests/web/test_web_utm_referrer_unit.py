import pytest

from gati.web.referrer import SourceType, classify, referrer_host
from gati.web.utm import extract_utm, utm_from_url


def test_utm_from_url() -> None:
    url = "https://ex.com/p?utm_source=news&utm_medium=email&utm_campaign=spring%20sale&x=1"
    assert utm_from_url(url) == {
        "utm_source": "news",
        "utm_medium": "email",
        "utm_campaign": "spring sale",
    }
    assert utm_from_url(None) == {}
    assert utm_from_url("https://ex.com/?utm_source=") == {}
    assert utm_from_url("https://ex.com/?UTM_SOURCE=a&utm_source=b") == {"utm_source": "a"}


def test_attribution_wins_per_key_and_url_fills_the_rest() -> None:
    got = extract_utm(
        {"utm_source": "google", "utm_term": "  ", "other": "x", "utm_content": None},
        "https://ex.com/?utm_source=bing&utm_medium=cpc&utm_term=shoes",
    )
    assert got == {"utm_source": "google", "utm_medium": "cpc", "utm_term": "shoes"}
    assert list(got) == ["utm_source", "utm_medium", "utm_term"]


def test_utm_values_are_bounded() -> None:
    got = extract_utm({"utm_source": "a" * 1000}, None)
    assert len(got["utm_source"]) == 255


@pytest.mark.parametrize(
    ("referrer", "name", "kind"),
    [
        ("https://www.google.com/", "Google", SourceType.SEARCH),
        ("https://www.google.co.uk/search?q=x", "Google", SourceType.SEARCH),
        ("https://google.com.br/", "Google", SourceType.SEARCH),
        ("https://mail.google.com/mail/u/0/", "Gmail", SourceType.EMAIL),
        ("https://duckduckgo.com/", "DuckDuckGo", SourceType.SEARCH),
        ("https://www.bing.com/search?q=gati", "Bing", SourceType.SEARCH),
        ("https://l.facebook.com/l.php?u=x", "Facebook", SourceType.SOCIAL),
        ("https://m.facebook.com/", "Facebook", SourceType.SOCIAL),
        ("https://t.co/abc", "Twitter", SourceType.SOCIAL),
        ("https://x.com/someone", "Twitter", SourceType.SOCIAL),
        ("https://news.ycombinator.com/item?id=1", "Hacker News", SourceType.SOCIAL),
        ("https://old.reddit.com/r/python", "Reddit", SourceType.SOCIAL),
        ("android-app://com.google.android.googlequicksearchbox/", "Google", SourceType.SEARCH),
        ("https://blog.example.org/post", "blog.example.org", SourceType.REFERRAL),
        ("https://www.notgoogle.com/", "notgoogle.com", SourceType.REFERRAL),
    ],
)
def test_known_and_other_sources(referrer: str, name: str, kind: SourceType) -> None:
    source = classify(referrer, page_url="https://mysite.io/")
    assert (source.name, source.type) == (name, kind)


def test_direct_and_internal() -> None:
    assert classify(None).type is SourceType.DIRECT
    assert classify("").name is None
    internal = classify("https://www.mysite.io/a", page_url="https://mysite.io/b")
    assert internal.type is SourceType.INTERNAL and internal.name is None
    by_setting = classify("https://docs.mysite.io/", site_hostnames=["mysite.io"])
    assert by_setting.type is SourceType.INTERNAL


def test_utm_source_wins_and_known_names_are_normalised() -> None:
    assert classify("https://t.co/x", utm_source="newsletter").name == "newsletter"
    assert classify("https://t.co/x", utm_source="newsletter").type is SourceType.CAMPAIGN
    fb = classify(None, utm_source="fb")
    assert (fb.name, fb.type) == ("Facebook", SourceType.SOCIAL)
    assert classify(None, utm_source="Google").name == "Google"


def test_referrer_host_normalisation() -> None:
    assert referrer_host("https://WWW.Example.COM:8443/x") == "example.com"
    assert referrer_host("example.com/path") == "example.com"
    assert referrer_host("http://[::1") is None
    assert referrer_host("https://m.example.com") == "example.com"
    assert referrer_host("https://www.co") == "www.co"


def test_url_utm_cache_hands_out_copies() -> None:
    # utm_from_url is cached per URL: a caller changing its dict must not change the next one.
    url = "https://ex.com/cached?utm_source=news&utm_medium=email"
    first = utm_from_url(url)
    first["utm_source"] = "changed"
    first["utm_term"] = "added"
    assert utm_from_url(url) == {"utm_source": "news", "utm_medium": "email"}
    assert extract_utm(None, url) == {"utm_source": "news", "utm_medium": "email"}


def test_event_source_and_ref_cached_per_site_hostnames() -> None:
    # build_event caches the page's parts and the source; the same referrer and page must still
    # be internal for a site that names the referrer's host and a referral for one that does not.
    from gati.web.service import _page, _source

    page = "https://shop.example.org/p?ref=producthunt&source=other"
    assert _page(page).hostname == "shop.example.org"
    assert _page(page).ref_param == "producthunt"
    assert _page("https://Shop.Example.org/").ref_param is None
    referrer = "https://blog.example.com/post"
    assert _source(referrer, page, ("example.com",), None).type is SourceType.INTERNAL
    other = _source(referrer, page, (), None)
    assert other.type is SourceType.REFERRAL
    assert other.name == "blog.example.com"
    assert _source(referrer, page, (), "producthunt").type is not SourceType.REFERRAL
