package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/portwarden/portwarden/cmd/portwarden/config"
)

func newConfigCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Validate, show or print an example of the configuration",
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "validate",
			Short: "Check the config file, environment and flags; exit 2 if invalid",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return validateConfig(cmd, g)
			},
		},
		&cobra.Command{
			Use:   "show",
			Short: "Print the effective configuration as YAML, secrets redacted",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				cfg, _, err := loadConfig(cmd, g)
				if err != nil {
					return err
				}
				out, err := yaml.Marshal(cfg.Redacted())
				if err != nil {
					return fmt.Errorf("encoding config: %w", err)
				}
				_, err = cmd.OutOrStdout().Write(out)
				return err
			},
		},
		&cobra.Command{
			Use:   "example",
			Short: "Print a commented example config with every key at its default",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				_, err := cmd.OutOrStdout().Write(config.Example)
				return err
			},
		},
	)
	return cmd
}

// validateConfig prints "valid", or each problem on a line of its own on
// stderr and fails.
func validateConfig(cmd *cobra.Command, g *globalFlags) error {
	_, path, err := loadConfig(cmd, g)
	var invalid *config.Error
	if errors.As(err, &invalid) {
		for _, p := range invalid.Problems {
			fmt.Fprintln(cmd.ErrOrStderr(), p)
		}
		return fmt.Errorf("%s: %d problem(s)", describePath(path), len(invalid.Problems))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: valid\n", describePath(path))
	return nil
}

func describePath(path string) string {
	if path == "" {
		return "no config file at " + config.DefaultPath + ", defaults with environment and flags"
	}
	return "config file " + path
}
