"""Languages: every string of the web pages has its Simplified Chinese
translation in the catalog (extracted from the code and templates as `make
messages` does); the language comes from Accept-Language or the switch on
the page (remembered in a cookie); the Chinese UI in Chromium."""
from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir, extract_from_file
from babel.messages.pofile import read_po

from coremail.mail import address
from coremail.web import i18n

from .conftest import shot
from .test_webmail import PW, sign_in, users  # noqa: F401  (the users fixture)

WEB = Path(i18n.__file__).resolve().parent


def _extracted() -> set[str]:
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                                        "lstrip_blocks": "true"}}
    got = set()
    for _file, _line, msg, _comments, _ctx in extract_from_dir(str(WEB), method_map, options):
        got.add(msg if isinstance(msg, str) else msg[0])
    # the address checker's reasons, shown next to a compose field (make messages' WEB_EXTRA)
    keywords = {**DEFAULT_KEYWORDS, "AddressError": None}
    got.update(m[1] for m in extract_from_file("python", address.__file__, keywords=keywords))
    return got


def test_every_string_has_its_chinese_translation():
    with (WEB / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog
                  if m.id and "fuzzy" not in m.flags
                  and all(m.string if isinstance(m.string, tuple) else (m.string,))}
    missing = sorted(_extracted() - translated)
    assert not missing, f"untranslated (run `make messages`, then translate): {missing}"


def test_the_language_from_the_cookie_then_accept_language():
    assert i18n.choose(None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh_CN"
    assert i18n.choose(None, "en-US,en;q=0.9,zh;q=0.5") == "en"
    assert i18n.choose(None, "de;q=1, zh;q=0.7") == "zh_CN"
    assert i18n.choose(None, "zh-TW") == "zh_CN"
    assert i18n.choose(None, "fr, *;q=0.1") == "en"
    assert i18n.choose("en", "zh-CN") == "en"
    assert i18n.choose("xx", "zh-CN") == "zh_CN"
    i18n.use("zh_CN")
    try:
        assert i18n.gettext("Sign in") == "登录"
        assert i18n.ngettext("%(num)d message", "%(num)d messages", 3) % {"num": 3} == "3 封邮件"
    finally:
        i18n.use("en")


def test_the_chinese_ui_and_the_switch(web, users, browser):  # noqa: F811
    ctx = browser.new_context(viewport={"width": 1200, "height": 760}, locale="zh-CN",
                              extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    page = ctx.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(web.url + "/")
    assert page.get_by_role("button", name="登录").is_visible()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    shot(page, "webmail-login-zh")
    page.get_by_label("邮箱地址").fill("amy")
    page.get_by_label("密码").fill("wrong")
    page.get_by_role("button", name="登录").click()
    assert page.get_by_role("alert").inner_text() == "邮箱地址或密码错误。"
    page.get_by_label("密码").fill(PW)
    page.get_by_role("button", name="登录").click()
    assert page.locator("aside").get_by_role("link", name="收件箱").is_visible()
    assert page.get_by_role("columnheader", name="主题").is_visible()
    assert "封邮件" in page.locator("h1").inner_text()
    shot(page, "webmail-inbox-zh")
    page.get_by_role("link", name="Lunch on Friday?").click()
    assert page.get_by_role("link", name="全部回复").is_visible()
    shot(page, "webmail-message-zh")
    page.get_by_role("link", name="写邮件").click()
    assert page.get_by_role("button", name="保存草稿").is_visible()
    shot(page, "webmail-compose-zh")
    # the address checker's reasons next to their fields, in Chinese; the text kept
    page.get_by_label("收件人").fill("bad address@example.test")
    page.get_by_label("抄送").fill("ann@example..test")
    page.get_by_label("正文").fill("不要丢失这段文字")
    page.get_by_role("button", name="发送").click()
    assert page.locator("#to-error").inner_text() == "bad address@example.test: 用户名部分含有空格"
    assert page.locator("#cc-error").inner_text() == (
        "ann@example..test: 域名中有空的标签（连续两个点，或以点开头）")
    assert page.get_by_label("正文").input_value() == "不要丢失这段文字"
    assert "未发送：请检查下面标出的地址。" in page.locator(".flashes").inner_text()
    shot(page, "webmail-compose-errors-zh")
    page.goto(web.url + "/coremail/settings")
    assert page.get_by_role("button", name="修改密码").is_visible()
    shot(page, "webmail-settings-zh")
    page.goto(web.url + "/coremail/")
    page.get_by_role("link", name="English").click()
    assert page.url.endswith("/coremail/")
    assert page.get_by_role("columnheader", name="Subject").is_visible()
    assert [c for c in ctx.cookies() if c["name"] == "cm_lang"][0]["value"] == "en"
    page.goto(web.url + "/coremail/folder/INBOX")
    assert page.get_by_role("columnheader", name="Subject").is_visible()   # remembered
    page.get_by_role("link", name="简体中文").click()
    assert page.url.endswith("/coremail/folder/INBOX")
    assert page.get_by_role("columnheader", name="主题").is_visible()
    assert errors == []
    ctx.close()


def test_an_unsafe_next_stays_on_the_site(web, users, page):  # noqa: F811
    resp = page.request.get(web.url + "/coremail/lang/en?next=//evil.test/x",
                            max_redirects=0)
    assert resp.status == 303 and resp.headers["location"] == "/"
    sign_in(page, web)
    page.goto(web.url + "/coremail/login?next=https://evil.test/")
    assert page.url.startswith(web.url)
