// Package rustsdk embeds the sources of ork's Rust SDK crates, so that
// `ork init` can give a new project the SDK matching this ork's host ABI.
package rustsdk

import "embed"

// FS holds ork/ and ork-macros/ (manifests and sources only).
//
//go:embed ork/Cargo.toml ork/src ork-macros/Cargo.toml ork-macros/src
var FS embed.FS
