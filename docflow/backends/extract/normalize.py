"""Pure normalisers for values found in document text: amounts, dates, currencies.

Every function takes a piece of text and returns a typed value or None; none of them raises on bad input.
"""

import re
from datetime import date
from decimal import Decimal, InvalidOperation

# --- amounts -------------------------------------------------------------------------------------------

_SPACES = re.compile(r"[\s\u00a0\u2009\u202f']+")
_AMOUNT_CHARS = re.compile(r"[^\d.,()\-+−]")


def parse_amount(text: str) -> Decimal | None:
    """Parse a money amount written in any common convention.

    "1.234,56" and "1,234.56" -> 1234.56; "$ 1 234.56" -> 1234.56; "(12.00)" and "12.00-" -> -12.00;
    "12,-" -> 12. A lone separator followed by exactly three digits is a thousands separator
    ("1,234" -> 1234).
    Currency symbols/codes and spaces are ignored. Returns None if there is no number.
    """
    s = _SPACES.sub("", text.strip())
    s = s.replace("−", "-").replace(",-", "").replace(".-", "")
    s = _AMOUNT_CHARS.sub("", s)
    negative = False
    if s.startswith("(") and s.endswith(")"):
        negative, s = True, s[1:-1]
    s = s.strip("()+")
    if s.startswith("-"):
        negative, s = True, s[1:]
    elif s.endswith("-"):
        negative, s = True, s[:-1]
    if not s or not re.fullmatch(r"[\d.,]*\d[\d.,]*", s):
        return None
    number = _canonical_number(s.strip(".,"))
    if number is None:
        return None
    try:
        value = Decimal(number)
    except InvalidOperation:
        return None
    return -value if negative else value


def _canonical_number(s: str) -> str | None:
    """Turn digits with '.'/',' separators into a plain "1234.56" string."""
    dots, commas = s.count("."), s.count(",")
    if dots and commas:
        decimal_sep = "." if s.rfind(".") > s.rfind(",") else ","
        thousands = "," if decimal_sep == "." else "."
        if s.count(decimal_sep) > 1:
            return None
        return s.replace(thousands, "").replace(decimal_sep, ".")
    sep = "." if dots else "," if commas else ""
    if not sep:
        return s
    if s.count(sep) > 1:  # only thousands separators: 1.234.567
        groups = s.split(sep)
        return "".join(groups) if all(len(g) == 3 for g in groups[1:]) else None
    head, tail = s.split(sep)
    if len(tail) == 3 and head not in ("", "0"):
        return head + tail  # 1,234 / 1.234: thousands
    return f"{head or '0'}.{tail}"


# --- currencies ----------------------------------------------------------------------------------------

ISO_CURRENCIES = frozenset(
    [
        "AED",
        "ARS",
        "AUD",
        "BGN",
        "BRL",
        "CAD",
        "CHF",
        "CLP",
        "CNY",
        "COP",
        "CZK",
        "DKK",
        "EGP",
        "EUR",
        "GBP",
        "HKD",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "ISK",
        "JPY",
        "KES",
        "KRW",
        "MAD",
        "MXN",
        "MYR",
        "NGN",
        "NOK",
        "NZD",
        "PEN",
        "PHP",
        "PKR",
        "PLN",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "SAR",
        "SEK",
        "SGD",
        "THB",
        "TRY",
        "TWD",
        "UAH",
        "USD",
        "VND",
        "ZAR",
    ]
)

# Longest first so that "US$" wins over "$".
_CURRENCY_SYMBOLS: list[tuple[str, str]] = [
    ("US$", "USD"),
    ("CA$", "CAD"),
    ("C$", "CAD"),
    ("A$", "AUD"),
    ("AU$", "AUD"),
    ("NZ$", "NZD"),
    ("HK$", "HKD"),
    ("S$", "SGD"),
    ("R$", "BRL"),
    ("€", "EUR"),
    ("£", "GBP"),
    ("¥", "JPY"),
    ("₹", "INR"),
    ("₩", "KRW"),
    ("₽", "RUB"),
    ("₺", "TRY"),
    ("₫", "VND"),
    ("₱", "PHP"),
    ("₪", "ILS"),
    ("$", "USD"),
]
_CURRENCY_WORDS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\beuros?\b", re.I), "EUR"),
    (re.compile(r"\bzł|\bzloty", re.I), "PLN"),
    (re.compile(r"\bRs\.?(?=\s*\d)|\brupees?\b", re.I), "INR"),
    (re.compile(r"\bRM(?=\s*\d)"), "MYR"),
    (re.compile(r"\bKč"), "CZK"),
    (re.compile(r"\bFt\b"), "HUF"),
    (re.compile(r"\bdollars?\b", re.I), "USD"),
    (re.compile(r"\bpounds? sterling\b", re.I), "GBP"),
]
_CODE = re.compile(r"(?<![A-Za-z])([A-Z]{3})(?![A-Za-z])")


def parse_currency(text: str) -> str | None:
    """The ISO 4217 code named in `text`: a code ("EUR"), a symbol ("€", "$" -> USD, "£") or a word ("zł")."""
    for m in _CODE.finditer(text):
        if m.group(1) in ISO_CURRENCIES:
            return m.group(1)
    for symbol, code in _CURRENCY_SYMBOLS:
        if symbol in text:
            return code
    for pattern, code in _CURRENCY_WORDS:
        if pattern.search(text):
            return code
    return None


# --- dates ---------------------------------------------------------------------------------------------

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    [
        "january jan januar janvier januari janeiro enero gennaio styczeń stycznia jänner",
        "february feb februar février fevrier februari fevereiro febrero febbraio luty lutego",
        "march mar märz maerz mars maart março marzo marca",
        "april apr avril abril aprile kwiecień kwietnia",
        "may mai mei maio mayo maggio maj maja",
        "june jun juni juin junho junio giugno czerwiec czerwca",
        "july jul juli juillet julho julio luglio lipiec lipca",
        "august aug août aout augustus agosto sierpień sierpnia",
        "september sep sept septembre setembro septiembre settembre wrzesień września",
        "october oct oktober octobre outubro octubre ottobre okt październik października",
        "november nov novembre novembro noviembre listopad listopada",
        "december dec dezember décembre decembre dezembro diciembre dicembre dez grudzień grudnia",
    ],
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number

_MONTH = "(?P<month>" + "|".join(sorted(map(re.escape, _MONTHS), key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>[0-3]?\d)\s*(?:st|nd|rd|th|t\s?h|er|e|\.)?"
_YEAR = r"(?P<year>(?:19|20)\d{2})"
_DATE_PATTERNS: list[re.Pattern[str]] = [
    # 2021-03-04, 2021/03/04, 2021-03-04T10:00
    re.compile(rf"(?<!\d){_YEAR}[-/.](?P<m>[01]?\d)[-/.](?P<d>[0-3]?\d)(?!\d)"),
    # 2021年3月4日
    re.compile(rf"{_YEAR}\s*年\s*(?P<m>[01]?\d)\s*月\s*(?P<d>[0-3]?\d)\s*日"),
    # 4 March 2021, 4th day of March, 2021, 04. März 2021, 13 Sep, 2022
    re.compile(rf"(?<![\w]){_DAY}\s*(?:day\s+of\s+)?{_MONTH}(?![a-z])\s*,?\s*{_YEAR}", re.I),
    # March 4, 2021 / August 3 , 2014 / Sep 13 2022
    re.compile(rf"(?<![\w]){_MONTH}(?![a-z])\s+{_DAY}\s*,?\s*{_YEAR}", re.I),
    # 03/04/2021, 04.03.2021, 04-03-2021, 04.03.21
    re.compile(
        r"(?<![\d.,/])(?P<a>[0-3]?\d)(?P<sep>[./-])(?P<b>[0-3]?\d)(?P=sep)(?P<y>(?:19|20)?\d{2})(?![\d/])"
    ),
]


def parse_date(text: str, day_first: bool = True) -> date | None:
    """The first date written in `text`, or None.

    Understands ISO ("2021-03-04"), numeric ("03/04/2021", "04.03.2021", "04-03-21"), "4 March 2021",
    "March 4, 2021", "4th day of March, 2021", "2021年3月4日" and month names in English, French, German,
    Dutch, Spanish, Portuguese, Italian and Polish. For an ambiguous numeric date (both parts <= 12),
    `day_first` decides; a dotted date is always day-first, and an impossible order falls back to the other.
    """
    found = find_dates(text, day_first=day_first)
    return found[0][0] if found else None


def find_dates(text: str, day_first: bool = True) -> list[tuple[date, int, int]]:
    """Every date in `text` with its (start, end) offsets, in reading order."""
    hits: list[tuple[date, int, int]] = []
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            value = _date_from_match(m, day_first)
            if value is not None and not any(s <= m.start() < e for _, s, e in hits):
                hits.append((value, m.start(), m.end()))
    return sorted(hits, key=lambda h: h[1])


def _date_from_match(m: re.Match[str], day_first: bool) -> date | None:
    groups = m.groupdict()
    if groups.get("a") is not None:
        a, b, year = int(groups["a"]), int(groups["b"]), int(groups["y"])
        if year < 100:
            year += 2000 if year < 70 else 1900
        day_first = day_first or groups["sep"] == "."
        orders = [(a, b), (b, a)] if day_first else [(b, a), (a, b)]
        for day, month in orders:
            value = _safe_date(year, month, day)
            if value is not None:
                return value
        return None
    year = int(groups["year"])
    if groups.get("month") is not None:
        month = _MONTHS.get(groups["month"].lower())
        day = int(groups["day"])
    else:
        month, day = int(groups["m"]), int(groups["d"])
    return _safe_date(year, month, day) if month else None


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


# --- percentages and helpers ---------------------------------------------------------------------------

_PERCENT = re.compile(r"(?<![\d.,])(\d{1,3}(?:[.,]\d{1,3})?)\s*%")


def parse_percent(text: str) -> Decimal | None:
    """The first percentage in `text` ("19,0%" -> 19.0), or None."""
    m = _PERCENT.search(text)
    return Decimal(m.group(1).replace(",", ".")) if m else None


def clean_text(text: str) -> str:
    """Collapse whitespace and strip surrounding punctuation/quotes of a captured string."""
    return re.sub(r"\s+", " ", text).strip(" \t:;,-–—\"'“”‘’")
