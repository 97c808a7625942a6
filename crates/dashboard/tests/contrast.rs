//! The stylesheet's colour pairs meet WCAG 2 contrast: body text at least 7:1 (AAA),
//! every other text and state colour at least 4.5:1 (AA) on the background it is drawn
//! on. The colours are read from the shipped `assets/dashboard.css`, so a palette edit
//! that loses contrast fails here.

use std::collections::HashMap;

const CSS: &str = include_str!("../assets/dashboard.css");

/// `--name: #rrggbb;` declarations of `:root`.
fn palette() -> HashMap<String, String> {
    let root = CSS
        .split(":root")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("the stylesheet declares its palette in :root");
    root.split(';')
        .filter_map(|decl| {
            let (name, value) = decl.split_once(':')?;
            let name = name
                .trim()
                .trim_start_matches('{')
                .trim()
                .strip_prefix("--")?;
            Some((name.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

fn rgb(hex: &str) -> [f64; 3] {
    let hex = hex.strip_prefix('#').expect("a #rrggbb colour");
    assert_eq!(hex.len(), 6, "colour {hex} is not #rrggbb");
    let channel = |i: usize| {
        let v = u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits");
        f64::from(v) / 255.0
    };
    [channel(0), channel(2), channel(4)]
}

/// WCAG 2 relative luminance.
fn luminance(hex: &str) -> f64 {
    let lin = |c: f64| {
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let [r, g, b] = rgb(hex);
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

fn ratio(a: &str, b: &str) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

#[test]
fn every_text_colour_is_readable_on_its_background() {
    let p = palette();
    let colour = |v: &str| -> String {
        match v.strip_prefix("var(--").map(|n| n.trim_end_matches(')')) {
            Some(name) => p
                .get(name)
                .unwrap_or_else(|| panic!("--{name} is not in the palette"))
                .clone(),
            None => v.to_owned(),
        }
    };
    // (what, text, background, minimum ratio): the pairs the stylesheet draws.
    let pairs = [
        ("body text", "var(--fg)", "var(--bg)", 7.0),
        ("body text on panels", "var(--fg)", "var(--panel)", 7.0),
        ("header text", "var(--bg)", "var(--fg)", 7.0),
        ("live-state line in the header", "#e6e6e6", "var(--fg)", 4.5),
        ("muted text", "var(--muted)", "var(--bg)", 4.5),
        ("muted text on panels", "var(--muted)", "var(--panel)", 4.5),
        ("links", "var(--link)", "var(--bg)", 4.5),
        ("button label", "#ffffff", "var(--link)", 4.5),
        ("failing", "var(--failing)", "var(--failing-bg)", 4.5),
        ("failing on white", "var(--failing)", "var(--bg)", 4.5),
        ("blocked", "var(--blocked)", "var(--blocked-bg)", 4.5),
        ("progressing", "var(--progress)", "var(--progress-bg)", 4.5),
        ("healthy", "var(--healthy)", "var(--healthy-bg)", 4.5),
        ("desired cell text", "var(--fg)", "var(--healthy-bg)", 7.0),
        ("live cell text", "var(--fg)", "var(--failing-bg)", 7.0),
    ];
    let mut too_low = Vec::new();
    for (what, fg, bg, min) in pairs {
        let r = ratio(&colour(fg), &colour(bg));
        if r < min {
            too_low.push(format!("{what}: {fg} on {bg} is {r:.2}:1, below {min}:1"));
        }
    }
    assert!(
        too_low.is_empty(),
        "contrast too low:\n{}",
        too_low.join("\n")
    );
}

#[test]
fn the_contrast_formula_matches_wcags_reference_values() {
    // Black on white is the maximum, 21:1; a colour against itself is 1:1; #767676 on
    // white is the well-known AA threshold (4.54:1).
    assert!((ratio("#000000", "#ffffff") - 21.0).abs() < 1e-9);
    assert!((ratio("#777777", "#777777") - 1.0).abs() < 1e-9);
    let grey = ratio("#767676", "#ffffff");
    assert!((4.5..4.6).contains(&grey), "{grey}");
}
