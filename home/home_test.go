package home

import "testing"

func TestCheckLoopback(t *testing.T) {
	for _, a := range []string{"127.0.0.1:0", "[::1]:5001", "localhost:0", "127.0.0.2:80"} {
		if err := CheckLoopback(a); err != nil {
			t.Errorf("%s refused: %v", a, err)
		}
	}
	for _, a := range []string{"0.0.0.0:0", "[::]:0", "192.168.1.1:80", "10.0.0.1:1", "example.com:80", ":5001", "nonsense"} {
		if err := CheckLoopback(a); err == nil {
			t.Errorf("%s accepted", a)
		}
	}
}
