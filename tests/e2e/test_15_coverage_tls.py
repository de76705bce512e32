"""TLS files a listener cannot use, each refused at start with a message that names the
file and the reason: a certificate that is not PEM, an encrypted private key (no
passphrase is ever asked for), a CA file without a certificate, cipher suites that match
nothing; and a certificate not valid yet, served with a warning."""
import datetime
import subprocess

from fdt import FDTSERVER
from test_50_tls import HELLO, openssl, pki, tls_listener  # noqa: F401 (pki: a fixture)


def start_fails(make_server, pki, **listener):
    s = make_server(app=HELLO, start=False)
    s.listeners = {"main": tls_listener(pki, s.port, **listener)}
    s.write_config()
    r = subprocess.run([str(FDTSERVER), "-c", str(s.conf_path)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0, r
    return r.stdout + r.stderr


def test_15_50_tls_files_that_cannot_be_used(make_server, pki, tmp_path):
    text = tmp_path / "text.pem"
    text.write_text("not a certificate\n")
    out = start_fails(make_server, pki, certificate=str(text))
    assert f"[listen.main] certificate {text}: " in out, out
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-aes-256-cbc", "-pass", "pass:secret", "-out", "encrypted.key", cwd=tmp_path)
    out = start_fails(make_server, pki, private_key=str(tmp_path / "encrypted.key"))
    assert "(an unencrypted PEM key is needed)" in out, out
    out = start_fails(make_server, pki, ca=str(text), verify_client="require")
    assert f"[listen.main] ca {text}: " in out, out
    out = start_fails(make_server, pki, ciphersuites="NO_SUCH_SUITE")
    assert "[listen.main] ciphersuites 'NO_SUCH_SUITE': " in out, out


def test_15_51_a_certificate_not_valid_yet_is_served_with_a_warning(make_server, pki, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=2))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    (tmp_path / "future.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "future.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    s = make_server(app=HELLO, start=False)
    s.listeners = {"main": tls_listener(tmp_path, s.port, cert="future", key="future")}
    s.write_config()
    s.start()
    s.wait_log(f"[listen.main] certificate {tmp_path}/future.pem is not valid yet")
