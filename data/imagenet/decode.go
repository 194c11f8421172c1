package imagenet

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // register the decoders Decode and DecodeFile use
	_ "image/png"
	"io"
	"os"
)

// MaxPixels bounds the images Decode accepts (256 megapixels, about 1 GiB decoded),
// so that a file whose header claims an absurd size fails instead of exhausting
// memory.
const MaxPixels = 1 << 28

// DecodeFile reads a JPEG or PNG image. Errors name the file.
func DecodeFile(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError: names the file
	}
	defer f.Close()
	return Decode(f, path)
}

// Decode reads a JPEG or PNG image from r; name names it in errors. The header is
// checked first: a size over MaxPixels is an error before any pixel is allocated.
func Decode(r io.Reader, name string) (image.Image, error) {
	var head bytes.Buffer
	cfg, format, err := image.DecodeConfig(io.TeeReader(r, &head))
	if err != nil {
		if head.Len() == 0 {
			return nil, fmt.Errorf("%s: empty file", name)
		}
		return nil, decodeErr(name, format, err) // format is known if the magic matched
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, fmt.Errorf("%s: a %dx%d %s image; at most %d pixels are accepted", name, cfg.Width, cfg.Height, format, MaxPixels)
	}
	img, _, err := image.Decode(io.MultiReader(&head, r))
	if err != nil {
		return nil, decodeErr(name, format, err)
	}
	return img, nil
}

func decodeErr(name, format string, err error) error {
	switch {
	case errors.Is(err, image.ErrFormat):
		return fmt.Errorf("%s: not a JPEG or PNG image", name)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return fmt.Errorf("%s: truncated %s file", name, format)
	case format != "":
		return fmt.Errorf("%s: bad %s file: %v", name, format, err)
	}
	return fmt.Errorf("%s: %v", name, err)
}
