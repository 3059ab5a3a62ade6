"""The listener over TLS (PS3.15 B.1): DCMTK and pynetdicom peers with certificates; plain TCP
and callers without a trusted certificate are turned away; the listener keeps serving."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from carina.config.env import ConfigError, DicomTLS, load_env
from carina.dimse.listener import Listener
from carina.dimse.tests.conftest import HOST, dcmtk, scu_args

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True)
class PKI:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _issue(folder: Path, name: str, ca: tuple[Path, Path], san: str | None) -> tuple[Path, Path]:
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        f"/CN={name}",
    )
    extensions = folder / f"{name}.ext"
    extensions.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca[0]),
        "-CAkey",
        str(ca[1]),
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        str(cert),
        "-extfile",
        str(extensions),
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    folder = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = folder / "ca.key", folder / "ca.crt"
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_cert),
        "-days",
        "2",
        "-subj",
        "/CN=Carina test CA",
    )
    server_cert, server_key = _issue(folder, "server", (ca_cert, ca_key), f"IP:{HOST}")
    client_cert, client_key = _issue(folder, "modality", (ca_cert, ca_key), None)
    return PKI(ca_cert, server_cert, server_key, client_cert, client_key)


def _pynetdicom_echo(port: int, pki: PKI, with_client_cert: bool) -> int | None:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca))
    if with_client_cert:
        context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    ae = AE(ae_title="TLSSCU")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.network_timeout = 5
    assoc = ae.associate(HOST, port, ae_title="CARINA", tls_args=(context, HOST))
    if not assoc.is_established:
        return None
    status = assoc.send_c_echo()
    assoc.release()
    return int(status.Status) if "Status" in status else None


def test_dcmtk_echo_over_tls_and_plain_tcp_refused(
    make_listener: Callable[..., Listener], pki: PKI
) -> None:
    listener = make_listener(tls=DicomTLS(pki.server_cert, pki.server_key))
    tls = dcmtk(
        "echoscu",
        "+tls",
        str(pki.client_key),
        str(pki.client_cert),
        "+cf",
        str(pki.ca),
        *scu_args(listener.port),
    )
    assert tls.returncode == 0, tls.stderr
    plain = dcmtk("echoscu", "-to", "5", "-ta", "5", *scu_args(listener.port))
    assert plain.returncode != 0
    # The listener still serves TLS peers after the plain-TCP attempt.
    assert _pynetdicom_echo(listener.port, pki, with_client_cert=False) == 0x0000


def test_client_certificate_required_when_a_ca_is_configured(
    make_listener: Callable[..., Listener], pki: PKI
) -> None:
    listener = make_listener(tls=DicomTLS(pki.server_cert, pki.server_key, pki.ca))
    assert _pynetdicom_echo(listener.port, pki, with_client_cert=False) is None
    assert _pynetdicom_echo(listener.port, pki, with_client_cert=True) == 0x0000
    dcmtk_ok = dcmtk(
        "echoscu",
        "+tls",
        str(pki.client_key),
        str(pki.client_cert),
        "+cf",
        str(pki.ca),
        *scu_args(listener.port),
    )
    assert dcmtk_ok.returncode == 0, dcmtk_ok.stderr


def test_tls_settings_are_checked_at_start(pki: PKI, tmp_path: Path) -> None:
    env = load_env(
        {
            "CARINA_DICOM_TLS_CERT": str(pki.server_cert),
            "CARINA_DICOM_TLS_KEY": str(pki.server_key),
            "CARINA_DICOM_MAX_ASSOCIATIONS": "8",
            "CARINA_DICOM_MAX_PDU": "0",
        }
    )
    assert env.dicom_tls == DicomTLS(pki.server_cert, pki.server_key, None)
    assert (env.dicom_max_associations, env.dicom_max_pdu) == (8, 0)
    for environ, message in [
        ({"CARINA_DICOM_TLS_CERT": str(pki.server_cert)}, "Set both CARINA_DICOM_TLS_CERT"),
        ({"CARINA_DICOM_TLS_CA": str(pki.ca)}, "only checked over TLS"),
        (
            {
                "CARINA_DICOM_TLS_CERT": str(tmp_path / "none.crt"),
                "CARINA_DICOM_TLS_KEY": str(pki.server_key),
            },
            "none.crt': no such file",
        ),
        ({"CARINA_DICOM_MAX_PDU": "100"}, "at least 4096 bytes"),
        ({"CARINA_DICOM_MAX_ASSOCIATIONS": "0"}, "between 1 and 1000"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_env(environ)
