package pki

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
)

// TestLoadAuthorityIssuesForTheSameCA: a CA written with its key and
// loaded again issues certificates that its written certificate verifies
// (a lab adds hosts after it was built).
func TestLoadAuthorityIssuesForTheSameCA(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewAuthority("test CA")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.WriteCA(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.WriteCAKey(dir); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadAuthority(dir)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := loaded.Client("h5")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pair.CertPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("a certificate of the loaded CA does not verify with the original: %v", err)
	}
	if _, err := LoadAuthority(t.TempDir()); err == nil {
		t.Error("LoadAuthority of an empty directory succeeded")
	}
}
