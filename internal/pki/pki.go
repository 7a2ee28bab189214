package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// validity is how long the certificates are valid: labs and tests are
// short-lived, but a lab left up for days must keep working.
const validity = 365 * 24 * time.Hour

// Authority is a certificate authority that issues certificates.
type Authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// CertPEM is the CA certificate, for the trusted CA files.
	CertPEM []byte
}

// Pair is a certificate and its key, PEM-encoded.
type Pair struct {
	CertPEM, KeyPEM []byte
}

// Files names the files a Pair was written to.
type Files struct {
	Cert, Key string
}

// NewAuthority makes a CA with the given common name.
func NewAuthority(name string) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	template := baseTemplate(name)
	template.IsCA = true
	template.BasicConstraintsValid = true
	template.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Authority{cert: cert, key: key, CertPEM: encode("CERTIFICATE", der)}, nil
}

// Server issues a certificate for a server reachable at the addresses
// (also valid as a client: etcd members dial each other with it).
func (ca *Authority) Server(name string, addrs ...netip.Addr) (Pair, error) {
	template := baseTemplate(name)
	for _, a := range addrs {
		template.IPAddresses = append(template.IPAddresses, net.IP(a.AsSlice()))
	}
	template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	return ca.issue(template)
}

// Client issues a client certificate for the user named name (etcd takes
// the common name as the user when authentication is on).
func (ca *Authority) Client(name string) (Pair, error) {
	template := baseTemplate(name)
	template.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return ca.issue(template)
}

func (ca *Authority) issue(template *x509.Certificate) (Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, err
	}
	template.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return Pair{}, fmt.Errorf("issuing certificate for %s: %w", template.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Pair{}, err
	}
	return Pair{CertPEM: encode("CERTIFICATE", der), KeyPEM: encode("EC PRIVATE KEY", keyDER)}, nil
}

func baseTemplate(name string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"slim"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
	}
}

func encode(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

// WriteCA writes the CA certificate to dir/ca.pem and returns its path.
func (ca *Authority) WriteCA(dir string) (string, error) {
	path := filepath.Join(dir, "ca.pem")
	return path, writePrivate(path, ca.CertPEM)
}

// Write writes the pair to dir/NAME.pem and dir/NAME-key.pem, root only.
func (p Pair) Write(dir, name string) (Files, error) {
	files := Files{Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+"-key.pem")}
	if err := writePrivate(files.Cert, p.CertPEM); err != nil {
		return Files{}, err
	}
	return files, writePrivate(files.Key, p.KeyPEM)
}

func writePrivate(path string, data []byte) error {
	os.Remove(path) // WriteFile keeps the mode of a file that exists
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// WriteCAKey writes the CA's private key to dir/ca-key.pem (root only),
// so that the CA can issue more certificates later (LoadAuthority).
func (ca *Authority) WriteCAKey(dir string) (string, error) {
	der, err := x509.MarshalECPrivateKey(ca.key)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "ca-key.pem")
	return path, writePrivate(path, encode("EC PRIVATE KEY", der))
}

// LoadAuthority reads a CA written by WriteCA and WriteCAKey in dir.
func LoadAuthority(dir string) (*Authority, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		return nil, err
	}
	certBlock, _ := pem.Decode(certPEM)
	keyBlock, _ := pem.Decode(keyPEM)
	if certBlock == nil || keyBlock == nil {
		return nil, fmt.Errorf("the CA in %s is not PEM", dir)
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the CA certificate in %s: %w", dir, err)
	}
	key, err := x509.ParseECPrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the CA key in %s: %w", dir, err)
	}
	return &Authority{cert: cert, key: key, CertPEM: certPEM}, nil
}
