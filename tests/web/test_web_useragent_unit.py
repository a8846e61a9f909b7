import pytest

from gati.web.useragent import DeviceType, parse_user_agent

CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
CHROME_ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)
CUBOT_PHONE = (
    "Mozilla/5.0 (Linux; Android 11; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)


@pytest.mark.parametrize(
    ("ua", "browser", "os", "device"),
    [
        (CHROME_WIN, "Chrome", "Windows", DeviceType.DESKTOP),
        (FIREFOX_LINUX, "Firefox", "Linux", DeviceType.DESKTOP),
        (SAFARI_MAC, "Safari", "Mac OS X", DeviceType.DESKTOP),
        (SAFARI_IPHONE, "Mobile Safari", "iOS", DeviceType.MOBILE),
        (SAFARI_IPAD, "Mobile Safari", "iOS", DeviceType.TABLET),
        (CHROME_ANDROID_PHONE, "Chrome Mobile", "Android", DeviceType.MOBILE),
        (CHROME_ANDROID_TABLET, "Chrome", "Android", DeviceType.TABLET),
        (CUBOT_PHONE, "Chrome Mobile", "Android", DeviceType.MOBILE),
    ],
)
def test_real_browsers(ua: str, browser: str, os: str, device: DeviceType) -> None:
    info = parse_user_agent(ua)
    assert info.browser == browser
    assert info.os == os
    assert info.device_type is device
    assert info.is_bot is False
    assert info.browser_version and info.browser_version[0].isdigit()


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
        "PhantomJS/2.1.1 Safari/538.1",
        "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/109.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "curl/8.5.0",
        "python-requests/2.32.0",
        "Go-http-client/1.1",
        "",
        None,
    ],
)
def test_bots_and_headless(ua: str | None) -> None:
    info = parse_user_agent(ua)
    assert info.is_bot is True
    assert info.device_type is DeviceType.BOT


def test_parse_is_cached_and_long_uas_truncated() -> None:
    long_ua = CHROME_WIN + " x" * 5000
    assert parse_user_agent(long_ua).browser == "Chrome"
    assert parse_user_agent(CHROME_WIN) is parse_user_agent(CHROME_WIN)
