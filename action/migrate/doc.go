// Package migrate carries out a cold migration of a plan's applications:
// it stops the live moving APs in dependency order, moves their files with
// rsync, and starts them again at the target with their recorded argv,
// cwd and ids. The same sequence can be printed as a reviewable shell
// script (--emit), with CRIU commands for a live move where `criu check`
// passes on this host.
package migrate
