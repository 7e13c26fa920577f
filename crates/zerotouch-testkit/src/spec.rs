//! Reading `docs/PROTOCOL.md` the way its checking tests need: one section, its prose with
//! the line wrapping taken out, the rows of a table, the numbers in a cell.

/// The section of `docs/PROTOCOL.md` that starts with the heading `heading` (for example
/// `"## 20. BLE binding"`), up to the next `## ` heading.
///
/// # Panics
/// When the file cannot be read or has no such heading: the test checking it fails there.
#[allow(clippy::panic, clippy::indexing_slicing)]
pub fn protocol_section(heading: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/PROTOCOL.md");
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading docs/PROTOCOL.md: {e}"));
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("docs/PROTOCOL.md lacks `{heading}`"));
    let end = text[start + 1..]
        .find("\n## ")
        .map_or(text.len(), |e| start + 1 + e);
    text[start..end].to_string()
}

/// `section` with every run of white space made one space: for phrases the text may wrap.
pub fn prose(section: &str) -> String {
    section.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The rows of the table in `section` whose header row is `header`, cells trimmed.
///
/// # Panics
/// When there is no such table, it is empty, or a row has another number of cells.
#[allow(clippy::panic, clippy::indexing_slicing)]
pub fn table(section: &str, header: &str) -> Vec<Vec<String>> {
    let start = section
        .find(&format!("{header}\n"))
        .unwrap_or_else(|| panic!("the section lacks the table `{header}`"));
    let rows: Vec<Vec<String>> = section[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect();
    let columns = header.matches(" | ").count() + 1;
    for row in &rows {
        assert_eq!(row.len(), columns, "a row of `{header}`: {row:?}");
    }
    assert!(!rows.is_empty(), "`{header}` is empty");
    rows
}

/// The first number in `cell`, thousands separators allowed: "4,202 bytes" → 4202.
///
/// # Panics
/// When the cell has no number.
#[allow(clippy::panic)]
pub fn number(cell: &str) -> usize {
    let digits: String = cell
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number in `{cell}`"))
}

/// `n` as the spec writes numbers: 4202 → "4,202".
pub fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
