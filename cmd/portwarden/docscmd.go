package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newVersionCommand prints the version built in with -ldflags, from git
// describe.
func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print portwarden's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "portwarden %s\n", version)
			return err
		},
	}
}

// newGenDocsCommand writes the man pages and shell completions that the
// packages install. It is hidden: packaging runs it, people need not.
func newGenDocsCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:    "gen-docs DIR",
		Short:  "Write man pages and shell completions under DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return genDocs(root, args[0])
		},
	}
}

func genDocs(root *cobra.Command, dir string) error {
	man := filepath.Join(dir, "man")
	completions := filepath.Join(dir, "completions")
	for _, d := range []string{man, completions} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
	}
	header := &doc.GenManHeader{Title: "PORTWARDEN", Section: "1", Source: "portwarden " + version,
		Manual: "portwarden manual"}
	root.DisableAutoGenTag = true
	if err := doc.GenManTree(root, header, man); err != nil {
		return fmt.Errorf("writing man pages: %w", err)
	}
	for name, gen := range map[string]func(string) error{
		"portwarden.bash": func(p string) error { return root.GenBashCompletionFileV2(p, true) },
		"_portwarden":     root.GenZshCompletionFile,
		"portwarden.fish": func(p string) error { return root.GenFishCompletionFile(p, true) },
	} {
		if err := gen(filepath.Join(completions, name)); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}
