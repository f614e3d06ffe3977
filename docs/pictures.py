"""Pictures of every notice: each email's HTML (in each language it is sent in) rendered to PNG
with headless Chromium, into ``docs/img/``.

    python docs/pictures.py

Installs Debian's ``chromium`` (apt-get) and Pillow (pip, to trim the screenshots) when they are
missing. The notices are built by the bot's own code (``bot.notices.plan`` and
``bot.mail.render``) from sample data, so the pictures show exactly what is sent.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import mail, notices  # noqa: E402
from bot.countries import load_config  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.vocabulary import Channel  # noqa: E402

OUT = ROOT / "docs" / "img"
WIDTH = 720
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    print("installing Debian's chromium …", flush=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "chromium"],
        check=True,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/bin"},
    )
    return shutil.which("chromium") or "/usr/bin/chromium"


def pillow() -> Any:
    try:
        return importlib.import_module("PIL.Image")
    except ImportError:
        print("installing Pillow …", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pillow"], check=True)
        return importlib.import_module("PIL.Image")


def samples() -> list[tuple[str, str, list[str], dict[str, Any]]]:
    """(file name, notice kind, languages, context) for every notice as it is sent."""
    settings = Settings(
        database_url="sqlite+aiosqlite:///unused.db",
        config_path=None,
        inspectorate_email="inspection@dolisa.example.gov.vn",
        staff_channel="C0STAFF",
    )
    country = load_config(settings).countries.country("VN")
    factory = notices.Party("VN-1001", "Saigon Stitch Co.", ("hr@saigonstitch.example",), "vi")
    buyers = [notices.Party("B-ACME", "Acme Outfitters", ("sourcing@acme.example",))]
    basis = [
        {
            "assessment_id": 1,
            "assessed_on": "2024-04-12",
            "nc_issues": ["CO-01", "CO-02", "FA-01", "OS-01", "WT-01"],
        },
        {
            "assessment_id": 2,
            "assessed_on": "2025-05-08",
            "nc_issues": ["CO-02", "OS-01", "OS-03", "WT-01"],
        },
        {
            "assessment_id": 3,
            "assessed_on": "2026-06-17",
            "nc_issues": ["CH-01", "CO-02", "FL-03", "OS-01", "WT-01", "WT-02"],
        },
    ]
    application = {
        "application_id": 1,
        "applied_on": "2026-09-01",
        "decided_on": "2026-10-15",
        "evidence": ["https://drive.example.org/saigon-stitch/evidence"],
        "reports": ["https://drive.example.org/saigon-stitch/inspectorate-report"],
    }
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "at_risk_warning",
            {
                "k": 2,
                "assessed_on": "2025-05-08",
                "kind": "regular",
                "nc_issues": basis[1]["nc_issues"],
            },
        ),
        (
            "process_stopped",
            {
                "k": 1,
                "assessed_on": "2026-06-17",
                "kind": "regular",
                "nc_issues": ["OS-02", "WT-01"],
            },
        ),
        (
            "pnc_designated",
            {
                "assessed_on": "2026-06-17",
                "kind": "regular",
                "nc_issues": basis[2]["nc_issues"],
                "basis": basis,
            },
        ),
        ("readmission_applied", application),
        ("readmission_approved", {**application, "note": "All issues and root causes resolved."}),
        ("readmission_rejected", {**application, "note": "Overtime records (WT-03) incomplete."}),
    ]
    found = []
    for kind, payload in events:
        planned, _ = notices.plan(
            f"VN-1001/{kind}",
            kind,
            payload,
            factory,
            country,
            buyers,
            date(2027, 6, 30),
            ["U0MANAGER"],
        )
        for notice in planned:
            if notice.channel != Channel.EMAIL:
                continue
            row = type(
                "Row", (), {"recipient_type": notice.recipient_type, "language": notice.language}
            )
            languages = mail.languages_for(row)  # type: ignore[arg-type]
            found.append(
                (
                    f"{notice.kind}-{notice.recipient_type}-{'-'.join(languages)}",
                    notice.kind,
                    languages,
                    notice.payload,
                )
            )
    call = {
        "recipient": "buyer",
        "buyer": {"id": "B-ACME", "name": "Acme Outfitters"},
        "call": {"held_at": "2026-12-10 15:00 (Asia/Ho_Chi_Minh)"},
        "country": {"code": "", "name": ""},
        "factories": [
            {
                "id": "VN-1001",
                "name": "Saigon Stitch Co.",
                "country": "VN",
                "state": "pnc",
                "label": "Persistently non-compliant",
                "last_assessed_on": "2026-06-17",
                "last_nc_count": 6,
            },
            {
                "id": "VN-1002",
                "name": "Hanoi Knitwear Ltd.",
                "country": "VN",
                "state": "at_risk",
                "label": "At risk (1 of 3)",
                "last_assessed_on": "2026-09-03",
                "last_nc_count": 4,
            },
        ],
    }
    found.append(("buyer_call_reminder-buyer-en", "buyer_call_reminder", ["en"], call))
    return found


def main() -> None:
    browser = chromium()
    image = pillow()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for name, kind, languages, context in samples():
            subject, _, html = mail.render(kind, languages, context)
            page = Path(scratch) / f"{name}.html"
            page.write_text(html, encoding="utf-8")
            shot = Path(scratch) / f"{name}.png"
            subprocess.run(
                [
                    browser,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={scratch}/profile",
                    f"--window-size={WIDTH},6000",
                    f"--screenshot={shot}",
                    page.as_uri(),
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
            picture = image.open(shot).convert("RGB")
            background = picture.getpixel((picture.width - 1, picture.height - 1))
            height = picture.height
            while height > 1 and all(
                picture.getpixel((x, height - 1)) == background for x in range(0, WIDTH, 8)
            ):
                height -= 1
            picture.crop((0, 0, WIDTH, min(picture.height, height + 24))).save(OUT / f"{name}.png")
            print(f"docs/img/{name}.png — {subject}")


if __name__ == "__main__":
    main()
