//! Issue 12 item 7 against the real binary: a tenants file in which two tenants share a secret
//! (each would accept the other's signed users) stops the server at start, with a message that
//! names the tenants and not the secret.

use std::process::Command;
use std::time::Duration;

const SHARED: &str = "shared-by-mistake-0123456789abcdef";

#[test]
fn the_server_refuses_to_start_with_tenants_sharing_a_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tenants = dir.path().join("tenants.toml");
    std::fs::write(
        &tenants,
        format!(
            "[[tenant]]\nid = \"shop\"\nsecret = \"{SHARED}\"\norigins = [\"https://shop.example\"]\n\n\
             [[tenant]]\nid = \"blog\"\nsecret = \"{SHARED}\"\norigins = [\"https://blog.example\"]\n"
        ),
    )
    .expect("write tenants file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_image-chat-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database"])
        .arg(dir.path().join("db"))
        .arg("--tenants")
        .arg(&tenants)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the server");
    // It must exit on its own, quickly; a server that started would wait for a signal.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started with two tenants sharing a secret");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success());
    assert!(
        stderr.contains("\"blog\"") || stderr.contains("\"shop\""),
        "{stderr}"
    );
    assert!(stderr.contains("same as the secret"), "{stderr}");
    assert!(
        !stderr.contains(SHARED),
        "the secret is not printed: {stderr}"
    );
}
