package accounts

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// User is the account C2VM_USER asks for.
type User struct {
	Name string
	UID  int // 0: the first free from 1000
	// PasswordHash is a crypt(3) hash; empty gives no password ("*"): the
	// user logs in with a key.
	PasswordHash string
	// SudoNoPasswd writes a sudoers drop-in letting the user run anything
	// as root without a password.
	SudoNoPasswd bool
}

// Users c2vm makes get uids in the range adduser gives ordinary users.
const (
	minUID = 1000
	maxUID = 60000
)

// userName is a portable login name (what Debian's adduser takes by
// default): safe in passwd, sudoers and a path.
var userName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// ParseUser reads NAME[:UID].
func ParseUser(s string) (User, error) {
	name, uid, hasUID := strings.Cut(s, ":")
	if !userName.MatchString(name) {
		return User{}, fmt.Errorf("%q is not a user name: use lowercase letters, digits, _ and - (not first), at most 32", name)
	}
	if name == "root" {
		return User{}, fmt.Errorf("root is there already: give its keys without a user, or name another user")
	}
	u := User{Name: name}
	if hasUID {
		n, err := strconv.Atoi(uid)
		if err != nil || n < minUID || n > maxUID || strconv.Itoa(n) != uid {
			return User{}, fmt.Errorf("uid %q: give a number from %d to %d", uid, minUID, maxUID)
		}
		u.UID = n
	}
	return u, nil
}

// account is a user as the target's /etc/passwd has it; home is relative
// to the root.
type account struct {
	name     string
	uid, gid int
	home     string
}

var rootAccount = account{name: "root", home: "root"}

// passwdEntry parses one /etc/passwd line (name:pw:uid:gid:gecos:home:shell).
func passwdEntry(l string) (account, bool) {
	f := strings.Split(l, ":")
	if len(f) != 7 {
		return account{}, false
	}
	uid, err1 := strconv.Atoi(f[2])
	gid, err2 := strconv.Atoi(f[3])
	return account{name: f[0], uid: uid, gid: gid, home: f[5]}, err1 == nil && err2 == nil
}

// ids collects the numbers in field i (uid 2, gid 2 of group) and the
// entry of name.
func ids(b []byte, i int) map[int]bool {
	used := map[int]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) > i {
			if n, err := strconv.Atoi(f[i]); err == nil {
				used[n] = true
			}
		}
	}
	return used
}

// lineOf returns the line of file b whose first field is name.
func lineOf(b []byte, name string) (string, bool) {
	for _, l := range strings.Split(string(b), "\n") {
		if n, _, ok := strings.Cut(l, ":"); ok && n == name {
			return l, true
		}
	}
	return "", false
}

// addUser makes u, or adopts the image's own account of that name (one a
// Dockerfile made with useradd), and returns it.
func addUser(root *os.Root, u User) (account, error) {
	passwd, err := readSmall(root, "etc/passwd")
	if err != nil {
		return account{}, fmt.Errorf("/etc/passwd: %w: c2vm cannot add user %s", err, u.Name)
	}
	if l, ok := lineOf(passwd, u.Name); ok {
		return adoptUser(root, u, l)
	}
	acc, err := newAccount(root, u, passwd)
	if err != nil {
		return account{}, err
	}
	if err := appendAccount(root, acc, u, passwd); err != nil {
		return account{}, err
	}
	return acc, makeHome(root, acc)
}

// adoptUser checks the image's account and sets its password.
func adoptUser(root *os.Root, u User, line string) (account, error) {
	acc, ok := passwdEntry(line)
	if !ok {
		return account{}, fmt.Errorf("the image's /etc/passwd entry of %s is malformed", u.Name)
	}
	if acc.uid < minUID {
		return account{}, fmt.Errorf("%s is a system account of the image (uid %d): name another user", u.Name, acc.uid)
	}
	if u.UID != 0 && u.UID != acc.uid {
		return account{}, fmt.Errorf("the image has user %s with uid %d, not %d: drop the uid or change the image", u.Name, acc.uid, u.UID)
	}
	home := strings.TrimPrefix(path.Clean(acc.home), "/")
	if !strings.HasPrefix(acc.home, "/") || home == "" || home == "." {
		return account{}, fmt.Errorf("the image's user %s has home %q, not a directory below /", u.Name, acc.home)
	}
	acc.home = home
	if u.PasswordHash != "" {
		if err := setPassword(root, u.Name, u.PasswordHash); err != nil {
			return account{}, err
		}
	}
	return acc, nil
}

// newAccount picks the numbers and the home of a new user: the uid asked
// for or the first free one from 1000, the group of the user's name when
// the image has one, else a new one with the uid's number when free.
func newAccount(root *os.Root, u User, passwd []byte) (account, error) {
	group, err := readSmall(root, "etc/group")
	if err != nil {
		return account{}, fmt.Errorf("/etc/group: %w: c2vm cannot add user %s", err, u.Name)
	}
	usedUID, usedGID := ids(passwd, 2), ids(group, 2)
	acc := account{name: u.Name, uid: u.UID, home: "home/" + u.Name}
	switch {
	case acc.uid != 0 && usedUID[acc.uid]:
		return account{}, fmt.Errorf("uid %d is taken by another user of the image", acc.uid)
	case acc.uid == 0:
		// Preferably a number free as a gid too, for a group of the same.
		if acc.uid = firstFree(usedUID, usedGID); acc.uid == 0 {
			acc.uid = firstFree(usedUID)
		}
		if acc.uid == 0 {
			return account{}, fmt.Errorf("no free uid from %d to %d", minUID, maxUID)
		}
	}
	if l, ok := lineOf(group, u.Name); ok {
		f := strings.Split(l, ":")
		gid, err := strconv.Atoi(f[min(2, len(f)-1)])
		if len(f) != 4 || err != nil {
			return account{}, fmt.Errorf("the image's /etc/group entry of %s is malformed", u.Name)
		}
		acc.gid = gid
		return acc, nil
	}
	acc.gid = acc.uid
	if usedGID[acc.gid] {
		if acc.gid = firstFree(usedGID); acc.gid == 0 {
			return account{}, fmt.Errorf("no free gid from %d to %d", minUID, maxUID)
		}
	}
	return acc, nil
}

// firstFree is the first number from minUID to maxUID in none of the
// sets, or 0.
func firstFree(used ...map[int]bool) int {
next:
	for n := minUID; n <= maxUID; n++ {
		for _, u := range used {
			if u[n] {
				continue next
			}
		}
		return n
	}
	return 0
}

// shell is bash when the image has it, else sh.
func shell(root *os.Root) string {
	for _, p := range []string{"bin/bash", "usr/bin/bash"} {
		if fi, err := root.Stat(p); err == nil && fi.Mode().IsRegular() {
			return "/bin/bash"
		}
	}
	return "/bin/sh"
}

// appendAccount adds the user to passwd and shadow, and its group to group
// and gshadow when it is new. Every value is a checked name or a number.
func appendAccount(root *os.Root, acc account, u User, passwd []byte) error {
	pw := "*"
	if u.PasswordHash != "" {
		pw = u.PasswordHash
	}
	shadow, err := readSmall(root, "etc/shadow")
	hasShadow := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("/etc/shadow: %w", err)
	}
	pwField := pw
	if hasShadow {
		pwField = "x"
		// No last change date: the same input gives the same disk.
		if err := appendLine(root, "etc/shadow", shadow, fmt.Sprintf("%s:%s::0:99999:7:::", acc.name, pw)); err != nil {
			return err
		}
	}
	line := fmt.Sprintf("%s:%s:%d:%d::/%s:%s", acc.name, pwField, acc.uid, acc.gid, acc.home, shell(root))
	if err := appendLine(root, "etc/passwd", passwd, line); err != nil {
		return err
	}
	group, err := readSmall(root, "etc/group")
	if err != nil {
		return fmt.Errorf("/etc/group: %w", err)
	}
	if _, ok := lineOf(group, acc.name); ok {
		return nil
	}
	if err := appendLine(root, "etc/group", group, fmt.Sprintf("%s:x:%d:", acc.name, acc.gid)); err != nil {
		return err
	}
	if gshadow, err := readSmall(root, "etc/gshadow"); err == nil {
		return appendLine(root, "etc/gshadow", gshadow, acc.name+":!::")
	}
	return nil
}

func appendLine(root *os.Root, name string, b []byte, line string) error {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	return rewrite(root, name, append(b, line+"\n"...))
}

// setPassword sets name's password field in /etc/shadow, or in /etc/passwd
// for images without shadow passwords.
func setPassword(root *os.Root, name, pw string) error {
	for _, file := range []string{"etc/shadow", "etc/passwd"} {
		b, err := readSmall(root, file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("/%s: %w", file, err)
		}
		out, ok := setField(b, name, 1, pw)
		if !ok {
			if file == "etc/shadow" {
				continue
			}
			return fmt.Errorf("/etc/passwd has no %s entry: its password cannot be set or locked", name)
		}
		return rewrite(root, file, out)
	}
	return fmt.Errorf("the image has neither /etc/shadow nor /etc/passwd: %s cannot be locked or given a password", name)
}

// SetRootPassword sets root's field in the text of an /etc/shadow or
// /etc/passwd; ok is false when it has no root line.
func SetRootPassword(b []byte, pw string) ([]byte, bool) { return setField(b, "root", 1, pw) }

// setField replaces field i of name's line.
func setField(b []byte, name string, i int, value string) ([]byte, bool) {
	lines := bytes.Split(b, []byte("\n"))
	for n, l := range lines {
		f := bytes.Split(l, []byte(":"))
		if string(f[0]) != name || len(f) <= i || len(f) < 3 {
			continue
		}
		f[i] = []byte(value)
		lines[n] = bytes.Join(f, []byte(":"))
		return bytes.Join(lines, []byte("\n")), true
	}
	return nil, false
}
