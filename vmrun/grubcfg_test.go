package vmrun

import (
	"strings"
	"testing"
)

func TestGrubWords(t *testing.T) {
	for in, want := range map[string]string{
		`'a' 'b c'`:              "a|b c",
		`'it'\''s'  ''  'x'`:     "it's|x",
		`'console=ttyS0,115200'`: "console=ttyS0,115200",
	} {
		got, err := grubWords(in)
		if err != nil || strings.Join(got, "|") != want {
			t.Errorf("%s: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`'open`, `bare`, `'a'$b`, `"quoted"`, `\x`} {
		if _, err := grubWords(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestParseGrubCfg(t *testing.T) {
	g, err := parseGrubCfg([]byte(appGrubCfg(testArgs)))
	if err != nil || !g.app || g.rootUUID != testRootUUID || g.kernel != appKernel || len(g.args) != 6 || g.args[5] != "panic=-1" {
		t.Fatalf("%+v, %v", g, err)
	}
	if g, err := parseGrubCfg([]byte(systemGrubCfg(testArgs))); err != nil || g.app {
		t.Errorf("system grub.cfg: %+v, %v", g, err)
	}
	uefi := strings.Replace(appGrubCfg(testArgs), "linux16", "linux", 1)
	if g, err := parseGrubCfg([]byte(uefi)); err != nil || !g.app {
		t.Errorf("UEFI grub.cfg: %+v, %v", g, err)
	}
	for name, cfg := range map[string]string{
		"empty":            "",
		"no search":        strings.Replace(appGrubCfg(testArgs), "search ", "# ", 1),
		"no linux line":    strings.Replace(appGrubCfg(testArgs), "\t\tlinux16", "\t\tlinux99", 1),
		"no $c2vm_cmdline": strings.Replace(appGrubCfg(testArgs), " $c2vm_cmdline", "", 1),
		"other initrd":     strings.Replace(appGrubCfg(testArgs), "'/.c2vm/initrd.img'", "'/tmp/x'", 1),
		"a tab":            appGrubCfg(testArgs + " 'a\tb'"),
		"a DEL":            appGrubCfg(testArgs + " 'a\x7fb'"),
	} {
		if _, err := parseGrubCfg([]byte(cfg)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBootEnvWords(t *testing.T) {
	env := "# GRUB Environment Block\n# c2vm_cmdline=no\nc2vm_cmdline=first\nc2vm_cmdline=a  b\tc\nc2vm_menu=5\n#####"
	if got, err := bootEnvWords([]byte(env)); err != nil || strings.Join(got, "|") != "a|b|c" {
		t.Errorf("%q, %v", got, err)
	}
	if got, err := bootEnvWords([]byte("c2vm_cmdline=x\n")); err != nil || got != nil {
		t.Errorf("not an environment block: %q, %v", got, err)
	}
	for _, bad := range []string{"c2vm_cmdline=a\\\\b", "c2vm_cmdline=a\x01"} {
		if _, err := bootEnvWords([]byte("# GRUB Environment Block\n" + bad + "\n")); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzGrubCfg(f *testing.F) {
	f.Add([]byte(appGrubCfg(testArgs)))
	f.Add([]byte(systemGrubCfg(testArgs)))
	f.Fuzz(func(t *testing.T, cfg []byte) {
		g, err := parseGrubCfg(cfg)
		if err == nil && (checkArgs(g.args) != nil || g.app && (g.kernel != appKernel || g.initrd != appInitrd)) {
			t.Fatalf("accepted %+v", g)
		}
	})
}
