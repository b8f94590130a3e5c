// The Pipeline module (see DESIGN.md section 1); filled in by its issue.
