"""A copy of the data folder, as a thief with a lost laptop's disk would take it.

The key lives in the service's environment, as docs/administrators.md says. The copy must
show no complaint text, number or PIN, carry no key, and be of no use to a service started
on it with any other key: it refuses instead of sealing new data beside the old.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT, Phone, make_app
from .test_cli import BIN, env_for, free_port
from .test_complaints import file_report, reference_in
from .test_privacy_at_rest import PIN, SENTINEL, USSD_NUMBER, files, found, number_forms, pin_forms


@pytest.mark.sqlite_only  # a copy of the folder holding the SQLite file; on PostgreSQL the
# folder holds no data (test_privacy_at_rest scans every value of the database instead)
def test_a_copy_of_the_data_folder_reads_nothing_and_runs_nowhere(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    services = app.extensions["migrantline"]
    phone = Phone(app.test_client(), USSD_NUMBER)
    assert reference_in(file_report(phone, pin=PIN, description=f"{SENTINEL} took it"))
    services.store.flush()
    services.store.close()
    data_dir = Path(app.config["MIGRANTLINE_DATA_DIR"])
    stolen = tmp_path / "stolen"
    shutil.copytree(data_dir, stolen)

    assert not (stolen / "secret_key").exists()  # the key was never on the disk
    needles = [SENTINEL, *number_forms(USSD_NUMBER), *pin_forms(PIN)]
    assert found(files(stolen), needles) == []
    assert data_dir.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o077 == 0 for p in data_dir.rglob("*") if p.is_file())

    # The thief starts the service on the copy, with no key (it makes one) or a new one:
    # it refuses, so no dashboard can be opened on the stolen cases.
    for key in (None, secrets.token_urlsafe(32)):
        env = env_for(tmp_path, MIGRANTLINE_DATA_DIR=str(stolen))
        env.pop("MIGRANTLINE_SECRET_KEY", None)
        if key:
            env["MIGRANTLINE_SECRET_KEY"] = key
        result = subprocess.run([str(BIN), "serve", "--demo", "--port", str(free_port())],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, result.stderr
        assert "is not the key the data" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
