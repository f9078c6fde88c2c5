package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"

	"github.com/portwarden/portwarden/test/enginetest"
)

// pipelineBench runs the watcher's benchmarks and returns their lines.
func pipelineBench() ([]string, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchtime", "2s",
		"-count", "3", "./watcher/")
	cmd.Dir = enginetest.ModuleRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go test -bench: %w\n%s", err, out)
	}
	var lines []string
	re := regexp.MustCompile(`^Benchmark\S+`)
	for _, l := range strings.Split(string(out), "\n") {
		if re.MatchString(l) {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
	}
	return lines, nil
}
