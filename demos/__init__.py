"""The demos: `make demo` (demos.marketplace) and `make demo-train` (demos.training), built on aidoc.flow."""
