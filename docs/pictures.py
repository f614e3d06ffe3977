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

from bot import chart, mail, notices  # noqa: E402
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
    # the factory's history as the notices' chart keeps it (bot/chart.py): a passing
    # assessment, an advisory visit (never counted), the three failing ones, a verification
    # visit while designated; each event shows the assessments up to its own
    history = [
        chart.Point(date(2022, 3, 15), 2),
        chart.Point(date(2023, 3, 20), 5, "advisory"),
        *(chart.Point(date.fromisoformat(b["assessed_on"]), len(b["nc_issues"])) for b in basis),
        chart.Point(date(2026, 9, 24), 1, "designated"),
    ]

    def charted(until: str, *, stopped: bool = False) -> dict[str, Any]:
        shown = [p for p in history if p.assessed_on.isoformat() <= until]
        if stopped:  # the process-stopped sample: one failing assessment, then two issues
            shown = [*history[:2], history[3], chart.Point(date.fromisoformat(until), 2)]
        return {"chart": chart.frozen(shown, country.rules.threshold)}

    events: list[tuple[str, dict[str, Any]]] = [
        (
            "at_risk_warning",
            {
                "k": 2,
                "assessed_on": "2025-05-08",
                "kind": "regular",
                "nc_issues": basis[1]["nc_issues"],
                **charted("2025-05-08"),
            },
        ),
        (
            "process_stopped",
            {
                "k": 1,
                "assessed_on": "2026-06-17",
                "kind": "regular",
                "nc_issues": ["OS-02", "WT-01"],
                **charted("2026-06-17", stopped=True),
            },
        ),
        (
            "pnc_designated",
            {
                "assessed_on": "2026-06-17",
                "kind": "regular",
                "nc_issues": basis[2]["nc_issues"],
                "basis": basis,
                **charted("2026-06-17"),
            },
        ),
        ("readmission_applied", application),
        (
            "readmission_approved",
            {
                **application,
                "note": "All issues and root causes resolved.",
                **charted("2026-10-15"),
            },
        ),
        (
            "readmission_rejected",
            {
                **application,
                "note": "Overtime records (WT-03) incomplete.",
                **charted("2026-10-15"),
            },
        ),
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
                # bot/remediation.py: where the issues of its last counted assessment stand
                "remediation": {"issues": 6, "reported": 3, "verified": 1, "still_open": 1},
            },
            {
                "id": "VN-1002",
                "name": "Hanoi Knitwear Ltd.",
                "country": "VN",
                "state": "at_risk",
                "label": "At risk (1 of 3)",
                "last_assessed_on": "2026-09-03",
                "last_nc_count": 4,
                "remediation": {"issues": 4, "reported": 0, "verified": 0, "still_open": 0},
            },
        ],
    }
    found.append(("buyer_call_reminder-buyer-en", "buyer_call_reminder", ["en"], call))
    # a zero-tolerance case escalated to the authorities (bot/usecases/ztp.py), as Viet Nam's
    # read it (Vietnamese, English below) and in English (``ztp_language = "en"``)
    case = {
        "recipient": "authority",
        "case": {
            "id": 12,
            "code": "CL-01",
            "issue": country.catalogue.name("CL-01"),
            "issue_vi": country.catalogue.name("CL-01", "vi"),
            "cluster": "Child Labour",
            "by_hand": False,
            "note": None,
            "opened_by": "pnc-bot",
            "assessed_on": "2026-11-18",
            "kind": "advisory",
        },
        "factory": {"id": "VN-1001", "name": "Saigon Stitch Co."},
        "country": {"code": "VN", "name": "Viet Nam"},
        "opened_at": "2026-11-20 10:00",
        "investigation_due": "2026-11-22 10:00",
        "action_plan_due": "2026-11-23 10:00",
        "investigation_hours": 48,
        "action_plan_hours": 72,
        "timezone": "Asia/Ho_Chi_Minh",
    }
    found.append(("ztp_referral-authority-vi-en", "ztp_referral", ["vi", "en"], case))
    found.append(("ztp_referral-authority-en", "ztp_referral", ["en"], case))
    reminder = {
        "recipient": "factory",
        "factory": {"id": "VN-1001", "name": "Saigon Stitch Co."},
        "country": {"code": "VN", "name": "Viet Nam"},
        "assessed_on": "2026-11-10",
        "report_on": "2026-11-15",
        "due_on": "2026-12-15",
        "days_left": 7,
        "issues": notices.issues(["CO-02", "OS-01", "WT-01", "WT-02"], country.catalogue),
    }
    found.append(
        (
            "progress_report_reminder-factory-vi-en",
            "progress_report_reminder",
            ["vi", "en"],
            reminder,
        )
    )
    found.append(
        ("progress_report_reminder-factory-en", "progress_report_reminder", ["en"], reminder)
    )
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
