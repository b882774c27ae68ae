package docker

import "testing"

func TestTransientBuildFailure(t *testing.T) {
	for _, tc := range []struct {
		log       string
		transient bool
	}{
		{"ERROR: Could not find a version that satisfies the requirement nope==1 (from versions: none)\nERROR: No matching distribution found for nope==1", false},
		{"WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: [Errno 111] Connection refused')': /simple/toolz/\nERROR: Could not find a version that satisfies the requirement toolz==1.2.0 (from versions: none)\nERROR: No matching distribution found for toolz==1.2.0", true},
		{"WARNING: Retrying ... NewConnectionError(...: Temporary failure in name resolution)\nERROR: No matching distribution found for x", true},
		{"ERROR: Cannot install a==1 and b==2 because these package versions have conflicting dependencies.\nERROR: ResolutionImpossible", false},
	} {
		if got := transientBuildFailure(tc.log); got != tc.transient {
			t.Errorf("transientBuildFailure(%.60q...) = %v, want %v", tc.log, got, tc.transient)
		}
	}
}
