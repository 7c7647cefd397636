//! TLS to PostgreSQL: `sslmode` against the test database (which runs with
//! `ssl=on`), and certificate checks against a cluster of the test's own,
//! started with a CA, server and client certificates generated here.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use signet_postgres::{migration_status, PostgresOptions, PostgresStore};
use signet_store::testkit::{claim_one, new_task, T0};
use signet_store::{Store, StoreError};

use crate::{database_url, fresh_schema, test_options, Admin};

/// How long a test waits for the listener to connect.
const BOUND: Duration = Duration::from_secs(30);

/// `url` with `params` added to its query.
fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

/// Whether every connection named `app` uses TLS, and how many there are.
async fn tls_of(admin: &Admin, app: &str) -> (bool, i64) {
    let row = admin
        .query_one(
            "SELECT coalesce(bool_and(s.ssl), false), count(*) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .expect("pg_stat_ssl");
    (row.get(0), row.get(1))
}

/// Connects a store with `sslmode`, runs a task through it and starts its
/// listener; returns whether its connections (pool and LISTEN) use TLS.
async fn store_uses_tls(url: &str, sslmode: &str) -> bool {
    let schema = fresh_schema("tls");
    let app = format!("signet_tls_{}", rand::random::<u32>());
    let url = with_params(url, &format!("sslmode={sslmode}&application_name={app}"));
    let store = PostgresStore::connect(&url, test_options(&schema))
        .await
        .unwrap_or_else(|e| panic!("connect with sslmode={sslmode}: {e}"));
    store.enqueue(new_task("tls"), T0).await.expect("enqueue");
    claim_one(&store, "tls", "w1", T0).await;
    assert!(store.until_listening(BOUND).await, "the listener connected");
    let admin = Admin::connect(database_url("tls").as_deref().expect("url")).await;
    let (all_tls, connections) = tls_of(&admin, &app).await;
    admin.close().await;
    assert!(
        connections >= 2,
        "the pool and the listener are both connected ({connections})"
    );
    store.danger_drop_schema().await.expect("drop schema");
    all_tls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_encrypts_every_connection_and_disable_none() {
    let Some(url) = database_url("require_encrypts_every_connection_and_disable_none") else {
        return;
    };
    assert!(store_uses_tls(&url, "require").await, "require uses TLS");
    assert!(
        store_uses_tls(&url, "prefer").await,
        "prefer uses TLS when offered"
    );
    assert!(!store_uses_tls(&url, "disable").await, "disable does not");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ca_file_is_named_before_connecting() {
    let Some(url) = database_url("a_missing_ca_file_is_named_before_connecting") else {
        return;
    };
    let url = with_params(&url, "sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem");
    let e = PostgresStore::connect(&url, PostgresOptions::default())
        .await
        .expect_err("no such file");
    assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
    assert!(
        e.to_string().contains("sslrootcert=/nonexistent/ca.pem"),
        "{e}"
    );
}

/// A CA, and certificates it signs, as PEM files in a directory.
struct Pki {
    dir: PathBuf,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new(dir: &Path, name: &str) -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Signet test CA {name}"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&ca_key).expect("CA certificate");
        std::fs::write(dir.join(format!("{name}.crt")), ca.pem()).expect("write CA");
        Pki {
            dir: dir.to_owned(),
            ca,
            ca_key,
        }
    }

    fn ca_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.crt"))
    }

    /// Issues a certificate for `names` (subject alternative names) with
    /// common name `cn`; writes `file.crt` and `file.key`.
    fn issue(&self, file: &str, cn: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) {
        let key = KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("sign certificate");
        std::fs::write(self.dir.join(format!("{file}.crt")), cert.pem()).expect("write cert");
        let key_path = self.dir.join(format!("{file}.key"));
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        set_mode(&key_path, 0o600);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A PostgreSQL cluster of the test's own on 127.0.0.1, stopped and
/// removed on drop.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    /// Run the server's tools as this user (`postgres` when the tests run
    /// as root, since initdb refuses root).
    run_as: Option<String>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// The directory of the newest installed server, or why there is none.
    fn find_bin() -> Result<PathBuf, String> {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("/usr/lib/postgresql cannot be read ({e})"))?
            .filter_map(|v| Some(v.ok()?.path().join("bin")))
            .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
            .collect();
        found.sort();
        found
            .pop()
            .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin".to_owned())
    }

    fn command(&self, tool: &str) -> Command {
        command_as(self.run_as.as_deref(), &self.bin.join(tool))
    }

    /// Starts a cluster. With `pki`: TLS on, the server certificate naming
    /// `localhost` only, and `certuser` admitted by client certificate;
    /// without: TLS off.
    fn start(pki: Option<&Pki>, env: TestEnv) -> Cluster {
        let TestEnv { bin, run_as, dir } = env;
        let data = dir.path().join("data");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let cluster = Cluster {
            bin,
            data,
            run_as,
            port,
            _dir: dir,
        };
        let out = cluster
            .command("initdb")
            .args(["-D", path_str(&cluster.data), "-U", "postgres"])
            .args(["--auth=trust", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb: {}", output_text(&out));
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{data}'\n\
             fsync = off\nmax_connections = 30\nshared_buffers = 16MB\n",
            data = cluster.data.display(),
        );
        conf.push_str(&match pki {
            Some(pki) => {
                let certs = |file: &str| pki.dir.join(file).display().to_string();
                format!(
                    "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nssl_ca_file = '{}'\n",
                    certs("server.crt"),
                    certs("server.key"),
                    certs("ca.crt"),
                )
            }
            None => "ssl = off\n".to_owned(),
        });
        append(&cluster.data.join("postgresql.conf"), &conf);
        std::fs::write(
            cluster.data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all certuser 127.0.0.1/32 cert\n\
             host all certuser 127.0.0.1/32 reject\n\
             host all all 127.0.0.1/32 trust\n",
        )
        .expect("write pg_hba.conf");
        if let Some(user) = &cluster.run_as {
            chown(user, &cluster.data);
        }
        let log = cluster.data.join("server.log");
        let out = cluster
            .command("pg_ctl")
            .args(["-D", path_str(&cluster.data), "-l", path_str(&log)])
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            output_text(&out),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        cluster
    }

    fn url(&self, host: &str, user: &str, params: &str) -> String {
        format!(
            "postgres://{user}@{host}:{}/postgres?connect_timeout=10&{params}",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", path_str(&self.data), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

fn command_as(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn chown(user: &str, path: &Path) {
    let out = Command::new("chown")
        .args(["-R", &format!("{user}:")])
        .arg(path)
        .output()
        .expect("run chown");
    assert!(out.status.success(), "chown: {}", output_text(&out));
}

/// Whether this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The store error for `url`, which must fail.
async fn refused(url: &str) -> String {
    let e = migration_status(url, &PostgresOptions::default())
        .await
        .expect_err(url);
    format!("{e}")
}

/// What a test needs to start a cluster of its own.
struct TestEnv {
    bin: PathBuf,
    /// `postgres` when the tests run as root (initdb refuses root).
    run_as: Option<String>,
    dir: tempfile::TempDir,
}

impl TestEnv {
    /// The server's tools and a temporary directory, or `None` (with a
    /// notice) when no PostgreSQL server is installed.
    fn new(test: &str) -> Option<TestEnv> {
        let bin = match Cluster::find_bin() {
            Ok(bin) => bin,
            Err(why) => {
                println!("SKIP {test}: {why}");
                return None;
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("signet-pgtls-")
            .tempdir()
            .expect("temp dir");
        Some(TestEnv {
            bin,
            run_as: is_root().then(|| "postgres".to_owned()),
            dir,
        })
    }

    /// Hands the directory to the user the server runs as.
    fn give_away(&self) {
        if let Some(user) = &self.run_as {
            chown(user, self.dir.path());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_tls_is_used_by_prefer_and_refused_by_require() {
    let Some(env) = TestEnv::new("a_server_without_tls_is_used_by_prefer_and_refused_by_require")
    else {
        return;
    };
    env.give_away();
    let cluster = Cluster::start(None, env);
    for mode in ["prefer", "allow", "disable"] {
        migration_status(
            &cluster.url("127.0.0.1", "postgres", &format!("sslmode={mode}")),
            &PostgresOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("sslmode={mode} falls back to plain text: {e}"));
    }
    let e = refused(&cluster.url("127.0.0.1", "postgres", "sslmode=require")).await;
    assert!(e.contains("does not offer TLS"), "{e}");
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_checked_as_sslmode_says() {
    let Some(env) = TestEnv::new("certificates_are_checked_as_sslmode_says") else {
        return;
    };
    let dir = env.dir.path().to_owned();
    let pki_dir = dir.join("pki");
    std::fs::create_dir(&pki_dir).expect("pki dir");
    let pki = Pki::new(&pki_dir, "ca");
    let _other = Pki::new(&pki_dir, "other-ca");
    pki.issue(
        "server",
        "localhost",
        &["localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    pki.issue(
        "client",
        "certuser",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    env.give_away();
    let cluster = Cluster::start(Some(&pki), env);
    let ca = pki.ca_path("ca").display().to_string();
    let other_ca = pki.ca_path("other-ca").display().to_string();

    // verify-full with the right CA and the name in the certificate.
    let good = cluster.url(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={ca}&application_name=verify_full"),
    );
    let store = PostgresStore::connect(&good, test_options(&fresh_schema("vfull")))
        .await
        .expect("verify-full with the right CA connects");
    assert!(store.until_listening(BOUND).await, "the listener connected");
    let admin = Admin::connect(&cluster.url("127.0.0.1", "postgres", "sslmode=disable")).await;
    let (all_tls, connections) = tls_of(&admin, "verify_full").await;
    assert!(all_tls && connections >= 2, "{connections} connections");
    store.close().await.expect("close");

    // verify-full with a CA that did not sign the server's certificate.
    let e = refused(&cluster.url(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={other_ca}"),
    ))
    .await;
    assert!(e.contains("not signed by a CA in sslrootcert"), "{e}");
    // So does verify-ca, and require once it is given a CA.
    for mode in ["verify-ca", "require"] {
        let e = refused(&cluster.url(
            "localhost",
            "postgres",
            &format!("sslmode={mode}&sslrootcert={other_ca}"),
        ))
        .await;
        assert!(
            e.contains("not signed by a CA in sslrootcert"),
            "{mode}: {e}"
        );
    }
    // Without a CA, require encrypts and checks nothing (as libpq).
    migration_status(
        &cluster.url("127.0.0.1", "postgres", "sslmode=require"),
        &PostgresOptions::default(),
    )
    .await
    .expect("require without sslrootcert accepts the certificate");

    // The certificate names localhost, not 127.0.0.1.
    let by_ip = cluster.url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let e = refused(&by_ip).await;
    assert!(e.contains("does not name the host"), "{e}");
    assert!(e.contains("verify-ca"), "{e}");
    // verify-ca checks the chain only.
    migration_status(
        &cluster.url(
            "127.0.0.1",
            "postgres",
            &format!("sslmode=verify-ca&sslrootcert={ca}"),
        ),
        &PostgresOptions::default(),
    )
    .await
    .expect("verify-ca ignores the host name");

    // Client certificates: certuser is admitted by its certificate only.
    admin
        .batch_execute("CREATE ROLE certuser LOGIN SUPERUSER")
        .await
        .expect("create certuser");
    let client = format!(
        "sslcert={}&sslkey={}",
        pki_dir.join("client.crt").display(),
        pki_dir.join("client.key").display()
    );
    migration_status(
        &cluster.url(
            "localhost",
            "certuser",
            &format!("sslmode=verify-full&sslrootcert={ca}&{client}"),
        ),
        &PostgresOptions::default(),
    )
    .await
    .expect("the client certificate is accepted");
    let e = refused(&cluster.url(
        "localhost",
        "certuser",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await;
    assert!(
        e.contains("sslcert and sslkey"),
        "without a client certificate: {e}"
    );
    admin.close().await;
    drop(cluster);
}
