# Incompressible test data, made fast and reproducibly (sourced after tap.sh):
# zeros through AES-128-CTR under a key made from a seed, a few hundred MB/s
# (zeros or a sparse file would compress away; /dev/urandom is slower and not
# reproducible).
#
#   random_file PATH MIB SEED           MIB MiB of incompressible bytes
#   incompressible_tree DIR N MIB SEED  a small game-server-like tree
#                                       (trees.py, 200 files) plus N files of
#                                       MIB MiB each under world/region

random_file() {
	mkdir -p "$(dirname "$1")" || return 1
	head -c "$(($2 * 1048576))" /dev/zero |
		openssl enc -aes-128-ctr -K "$(printf '%032x' "$3")" -iv 00000000000000000000000000000000 > "$1"
}

incompressible_tree() {
	local dir=$1 n=$2 mib=$3 seed=$4 i
	python3 "$top_srcdir/tests/lib/trees.py" make "$dir" --files 200 --seed "$seed" >/dev/null || return 1
	for i in $(seq 1 "$n"); do
		random_file "$dir/world/region/r.$i.0.mca" "$mib" $((seed * 1000 + i)) || return 1
	done
}
