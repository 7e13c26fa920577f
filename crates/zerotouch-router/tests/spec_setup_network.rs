//! `docs/SETUP-NETWORK.md` shows a `zerotouch-router render` command and its output; this runs
//! the command and compares, so the page and the code cannot drift, and has nft check the
//! ruleset.
#![allow(clippy::expect_used, clippy::panic)]

use std::process::Command;

use zerotouch_router::Nft;

fn page() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/SETUP-NETWORK.md");
    std::fs::read_to_string(path).expect("docs/SETUP-NETWORK.md")
}

/// The fenced blocks of `lang` in the section headed `heading`.
fn blocks(page: &str, heading: &str, lang: &str) -> Vec<String> {
    let section = page
        .split(&format!("\n## {heading}\n"))
        .nth(1)
        .expect("section present")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    section
        .split(&format!("```{lang}\n"))
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or_default().to_owned())
        .collect()
}

fn documented_command(page: &str) -> Vec<String> {
    let block = blocks(page, "The generated ruleset", "sh")
        .into_iter()
        .next()
        .expect("a sh block with the command");
    let words: Vec<String> = block
        .replace("\\\n", " ")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(words.first().map(String::as_str), Some("zerotouch-router"));
    words.into_iter().skip(1).collect()
}

fn render(args: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_zerotouch-router"))
        .args(args)
        .output()
        .expect("run zerotouch-router");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn the_documented_ruleset_is_what_the_documented_command_prints() {
    let page = page();
    let args = documented_command(&page);
    let shown = blocks(&page, "The generated ruleset", "nft");
    assert_eq!(shown.len(), 1);
    assert_eq!(render(&args), shown[0]);
}

#[test]
fn the_documented_forwarder_is_what_the_documented_command_prints() {
    let page = page();
    let mut args = documented_command(&page);
    args.push("--dnsmasq".into());
    let shown = blocks(&page, "The generated ruleset", "ini");
    assert_eq!(shown.len(), 1);
    assert_eq!(render(&args), shown[0]);
}

#[test]
fn the_documented_ruleset_passes_nfts_own_check() {
    let page = page();
    let ruleset = render(&documented_command(&page));
    let nft = Nft::find().expect("nft (scripts/system-deps.sh installs nftables)");
    nft.check(&ruleset).expect("nft -c accepts the ruleset");
}
